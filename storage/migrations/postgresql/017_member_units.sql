-- Member units 成员单位 (SPEC §10): a kind of unit attached to a community, with its type;
-- an estate may name the `property` member unit serving it.
ALTER TABLE units DROP CONSTRAINT units_kind_check;
ALTER TABLE units ADD CONSTRAINT units_kind_check
    CHECK (kind IN ('community','grid','estate','building','department','member'));
ALTER TABLE units ADD COLUMN member_type TEXT;
ALTER TABLE units ADD COLUMN property_code TEXT;

-- 双报到 (SPEC §10): a party member of a `dual_report` unit reported to the community where
-- they live, with the skills they offer there (`/report_in`; again: the newer report).
CREATE TABLE dual_reports (
    user_id        BIGINT PRIMARY KEY REFERENCES people(user_id),
    member_code    TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    community_code TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    skills         TEXT NOT NULL DEFAULT '',
    reported_at    TEXT NOT NULL
);
CREATE INDEX dual_reports_community ON dual_reports(community_code);

-- Member units answering a horn (响应吹号, SPEC §10): the units a horn calls, each one's
-- pledge of people (counted toward the quota) and, at the close, the number the owner
-- confirmed and the hours each of them served (the unit's people-hours).
ALTER TABLE horns ADD COLUMN units_called BIGINT NOT NULL DEFAULT 0;
ALTER TABLE horns ADD COLUMN units_pledged BIGINT NOT NULL DEFAULT 0;
CREATE TABLE horn_units (
    horn_id    BIGINT NOT NULL REFERENCES horns(id),
    unit_code  TEXT NOT NULL REFERENCES units(code) ON UPDATE CASCADE,
    pledged    BIGINT NOT NULL DEFAULT 0 CHECK (pledged >= 0),
    pledged_by BIGINT,
    pledged_at DOUBLE PRECISION,
    confirmed  BIGINT,
    hours      DOUBLE PRECISION,
    PRIMARY KEY (horn_id, unit_code)
);
CREATE INDEX horn_units_unit ON horn_units(unit_code);
