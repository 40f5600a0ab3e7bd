#!/usr/bin/env bash
# Copies the corpus files listed in manifest.tsv out of local git snapshots of
# their source repositories into a directory outside this repository. The
# files belong to those projects under their own licences (see the manifest)
# and are not kept here.
#
#   test/corpus/collect.sh MIRRORS_DIR CORPUS_DIR
#
# MIRRORS_DIR holds one bare git directory per source repository, named
# "<owner>+<name>/repo" (e.g. sisimai+set-of-emails/repo); each file is read
# at the commit the manifest names, so the corpus is the same every time.
# Then: TICKETD_CORPUS_DIR=CORPUS_DIR npx vitest run --config test/vitest.config.ts test/corpus
set -euo pipefail

mirrors=${1:?usage: collect.sh MIRRORS_DIR CORPUS_DIR}
corpus=${2:?usage: collect.sh MIRRORS_DIR CORPUS_DIR}
manifest="$(dirname "$0")/manifest.tsv"
mkdir -p "$corpus"

copied=0
missing=0
while IFS=$'\t' read -r file repo path commit _licence _class; do
  [ "$file" = file ] && continue
  gitdir="$mirrors/${repo/\//+}/repo"
  if git --git-dir="$gitdir" cat-file -e "$commit:$path" 2>/dev/null; then
    git --git-dir="$gitdir" show "$commit:$path" >"$corpus/$file"
    copied=$((copied + 1))
  else
    echo "missing: $repo $commit:$path" >&2
    missing=$((missing + 1))
  fi
done <"$manifest"
echo "copied $copied files to $corpus ($missing missing)"
