-- The order a commit writes an import's decided rows in (positions in file order, from 0), stored when the commit
-- starts so that a resumed commit (rows_done counts positions of this order) goes on exactly where it stopped,
-- whatever its rows are decided as by then. NULL for an import whose commit began before this column: it writes
-- in file order.
ALTER TABLE imports ADD COLUMN write_order integer[];
