-- The hostmanager's durable store: what each backend made on this host.
CREATE TABLE entity (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class TEXT NOT NULL CHECK (class IN ('element', 'connection')),
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    parent INTEGER REFERENCES entity(id),
    element1 INTEGER REFERENCES entity(id),
    element2 INTEGER REFERENCES entity(id),
    state TEXT NOT NULL,
    attrs TEXT NOT NULL,
    timeout INTEGER NOT NULL,
    -- The action under way (written before it starts, cleared when it ends),
    -- so a restart after a crash knows what to finish or roll back.
    pending TEXT,
    usage TEXT NOT NULL
);

CREATE TABLE resource (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    attrs TEXT NOT NULL
);

CREATE TABLE file_grant (
    token TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    entity INTEGER NOT NULL,
    action TEXT NOT NULL,
    path TEXT NOT NULL,
    expires INTEGER NOT NULL
);
