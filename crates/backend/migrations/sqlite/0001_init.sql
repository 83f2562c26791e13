-- The backend's schema (SQLite). Kept in step with ../postgres/0001_init.sql:
-- same tables, columns and constraints; only the id columns differ.
-- Booleans are 0/1 integers and JSON is TEXT so that both databases read the
-- same through sqlx's Any driver.

CREATE TABLE organization (
    name TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    description TEXT NOT NULL,
    homepage_url TEXT NOT NULL,
    image_url TEXT NOT NULL
);

CREATE TABLE account (
    name TEXT PRIMARY KEY,
    organization TEXT NOT NULL REFERENCES organization(name),
    realname TEXT NOT NULL,
    email TEXT NOT NULL,
    -- An argon2id PHC string.
    password_hash TEXT NOT NULL,
    -- JSON list of flag names.
    flags TEXT NOT NULL,
    quota_cputime DOUBLE PRECISION NOT NULL,
    quota_memory DOUBLE PRECISION NOT NULL,
    quota_diskspace DOUBLE PRECISION NOT NULL,
    quota_traffic DOUBLE PRECISION NOT NULL,
    -- JSON object of `_*` keys, kept verbatim.
    client_data TEXT NOT NULL,
    created BIGINT NOT NULL,
    last_login BIGINT
);

CREATE TABLE site (
    name TEXT PRIMARY KEY,
    organization TEXT NOT NULL REFERENCES organization(name),
    label TEXT NOT NULL,
    location TEXT NOT NULL,
    description TEXT NOT NULL
);

CREATE TABLE host (
    name TEXT PRIMARY KEY,
    site TEXT NOT NULL REFERENCES site(name),
    address TEXT NOT NULL,
    rpcurl TEXT NOT NULL UNIQUE,
    -- SHA-256 of the host's certificate, hex.
    fingerprint TEXT NOT NULL,
    enabled BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    description TEXT NOT NULL,
    last_poll BIGINT,
    problems TEXT NOT NULL,
    element_types TEXT NOT NULL,
    connection_types TEXT NOT NULL,
    network_kinds TEXT NOT NULL,
    host_info TEXT NOT NULL,
    component_errors BIGINT NOT NULL,
    availability DOUBLE PRECISION NOT NULL
);

CREATE TABLE template (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    description TEXT NOT NULL,
    urls TEXT NOT NULL,
    checksum TEXT,
    size BIGINT,
    kblang TEXT,
    restricted BIGINT NOT NULL CHECK (restricted IN (0, 1)),
    preference BIGINT NOT NULL,
    popularity DOUBLE PRECISION NOT NULL,
    show_as_common BIGINT NOT NULL CHECK (show_as_common IN (0, 1)),
    nlxtp_installed BIGINT NOT NULL CHECK (nlxtp_installed IN (0, 1)),
    -- JSON list of the hosts it is ready on.
    hosts TEXT NOT NULL,
    UNIQUE (type, name)
);

CREATE TABLE profile (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    description TEXT NOT NULL,
    ram BIGINT NOT NULL,
    cpus DOUBLE PRECISION NOT NULL,
    diskspace BIGINT NOT NULL,
    restricted BIGINT NOT NULL CHECK (restricted IN (0, 1)),
    preference BIGINT NOT NULL,
    UNIQUE (type, name)
);

CREATE TABLE network (
    kind TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    description TEXT NOT NULL,
    preference BIGINT NOT NULL,
    restricted BIGINT NOT NULL CHECK (restricted IN (0, 1)),
    show_as_common BIGINT NOT NULL CHECK (show_as_common IN (0, 1))
);

CREATE TABLE topology (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    site TEXT REFERENCES site(name),
    timeout BIGINT NOT NULL,
    timeout_step TEXT NOT NULL,
    client_data TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE topology_permission (
    topology BIGINT NOT NULL REFERENCES topology(id),
    account TEXT NOT NULL REFERENCES account(name),
    role TEXT NOT NULL CHECK (role IN ('user', 'manager', 'owner')),
    PRIMARY KEY (topology, account)
);

CREATE TABLE element (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topology BIGINT NOT NULL REFERENCES topology(id),
    type TEXT NOT NULL,
    parent BIGINT REFERENCES element(id),
    state TEXT NOT NULL,
    attrs TEXT NOT NULL,
    host TEXT REFERENCES host(name),
    -- The element's id on its host (the hostmanager's).
    host_id BIGINT
);
CREATE INDEX element_topology ON element(topology);

CREATE TABLE connection (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topology BIGINT NOT NULL REFERENCES topology(id),
    type TEXT NOT NULL,
    element1 BIGINT NOT NULL REFERENCES element(id),
    element2 BIGINT NOT NULL REFERENCES element(id),
    state TEXT NOT NULL,
    attrs TEXT NOT NULL,
    host TEXT REFERENCES host(name),
    host_id BIGINT
);
CREATE INDEX connection_topology ON connection(topology);

-- Accounting records of one object (accounting::UsageStatistics as JSON).
CREATE TABLE usage_record (
    class TEXT NOT NULL,
    object TEXT NOT NULL,
    statistics TEXT NOT NULL,
    PRIMARY KEY (class, object)
);
