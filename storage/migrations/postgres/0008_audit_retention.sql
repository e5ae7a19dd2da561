-- Audit log (append-only: the triggers refuse any change) and retention lookups.
CREATE TABLE audit_log (
    id     BIGSERIAL PRIMARY KEY,
    ts     BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor  TEXT,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_target ON audit_log (target, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE INDEX rooms_closed ON rooms (kind) WHERE status = 'closed';
CREATE INDEX attachments_room ON attachments (room_id) WHERE room_id IS NOT NULL;
