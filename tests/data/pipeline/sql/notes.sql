SELECT id, title, body, updated_at FROM notes;
