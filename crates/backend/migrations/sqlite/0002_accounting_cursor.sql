-- Where the accounting pull from each host stands: the end of the newest
-- `single` record charged (seconds since the epoch), so a pull after a
-- restart charges nothing twice.
CREATE TABLE accounting_cursor (
    host TEXT PRIMARY KEY REFERENCES host(name) ON DELETE CASCADE,
    pulled DOUBLE PRECISION NOT NULL
);
