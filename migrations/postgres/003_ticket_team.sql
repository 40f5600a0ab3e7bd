-- The team a ticket was last handed to, so whoever picks it up next sees
-- where it stands; the handoff itself is a public event, the note with it an
-- internal one.
ALTER TABLE tickets ADD COLUMN team TEXT;
