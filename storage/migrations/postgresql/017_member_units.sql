-- Member units 成员单位 (SPEC §10): a kind of unit attached to a community, with its type;
-- an estate may name the `property` member unit serving it.
ALTER TABLE units DROP CONSTRAINT units_kind_check;
ALTER TABLE units ADD CONSTRAINT units_kind_check
    CHECK (kind IN ('community','grid','estate','building','department','member'));
ALTER TABLE units ADD COLUMN member_type TEXT;
ALTER TABLE units ADD COLUMN property_code TEXT;
