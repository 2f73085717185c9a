-- Staff intake (工单录入, SPEC §11): where a ticket came from. A resident's own opinion is
-- 'resident'; a case staff entered names its source, the external reference number (required
-- for the 12345 hotline and the mailbox) and, staff-only, the caller. The same source and
-- reference twice is one case: the index decides.
ALTER TABLE tickets ADD COLUMN source TEXT NOT NULL DEFAULT 'resident' CHECK (source IN
    ('resident','hotline','mailbox','walk_in','phone','patrol','meeting'));
ALTER TABLE tickets ADD COLUMN source_ref TEXT;
ALTER TABLE tickets ADD COLUMN caller_name TEXT;
ALTER TABLE tickets ADD COLUMN caller_phone TEXT;
CREATE UNIQUE INDEX tickets_source_ref ON tickets (source, source_ref)
    WHERE source_ref IS NOT NULL;
