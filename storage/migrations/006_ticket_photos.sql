-- A resident may send several photos with one opinion: the first stays in photo_file_id, the
-- others (file ids, a JSON list) here.
ALTER TABLE tickets ADD COLUMN more_photos TEXT NOT NULL DEFAULT '[]';
