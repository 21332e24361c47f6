// Package store keeps Vantage's probe results, every node's buckets
// (series), state changes and incidents in one SQLite database
// (modernc.org/sqlite, pure Go, WAL mode).
// It imports no other Vantage package: it has its own record types.
//
// # One writer
//
// All writes go through one goroutine that owns the only write connection
// (a *sql.DB limited to one connection, BEGIN IMMEDIATE, synchronous=NORMAL,
// busy_timeout 5 s). Add and AddBatch put results on a buffered queue and
// return at once; when the queue is full they block for up to
// Options.EnqueueTimeout and then drop the result, counting it in
// Stats.Dropped and logging (never silently). The writer commits queued
// results in transactions of up to Options.BatchSize results, or after
// Options.FlushInterval, whichever comes first; Flush commits what was
// queued before it and waits, and reports the first write error since the
// previous Flush (a failed batch is logged and counted in
// Stats.ResultsFailed; it is not retried). State changes and incident writes are
// synchronous: they run in their own transaction on the same goroutine and
// return once committed. Reads use a separate pool of query_only
// connections and never wait for the writer (WAL readers see the last
// committed state).
//
// A crash (kill -9) loses at most the results not yet committed; each
// batch and its bucket updates are one transaction, so the database is
// never corrupt and the node's own buckets always match the raw rows they
// were built from (until retention prunes raw rows, which it does before
// their buckets).
//
// # Schema
//
// The schema is versioned in code (migrations in schema.go, applied in
// order, each in a transaction that also sets PRAGMA user_version; Open
// applies only the ones a database lacks and refuses a newer database).
// Times are unix milliseconds (UTC).
//
//	results(id, check_name, node, region, ts, ok, latency_ms, dns_ms,
//	        connect_ms, tls_ms, first_byte_ms, code, message)
//	    raw results; phase timings are NULL when the phase did not happen.
//	    Indexes (check_name, ts) and (ts).
//	series(check_name, node, step, start, region, count, failures,
//	        lat_count, lat_min_us, lat_max_us, lat_sum_us, hist)
//	    PK (check_name, node, step, start); index (node, step, start)
//	    every node's buckets (its own and its peers'): one row per check,
//	    node and minute (step 0), hour (1) or UTC day (2). lat_* cover the
//	    lat_count results with a measured latency (failures included);
//	    hist is the latency histogram below.
//	series_units(node, step, start, hash, rows)  PK (node, step, start)
//	    the digest of every check's bucket of one node, step and start
//	    (see series.go), for anti-entropy between nodes.
//	state_changes(id, check_name, ts, from_state, to_state, incident_id, detail)
//	incidents(id PK, check_name, title, state, started_at, resolved_at NULL
//	        while open, updated_at, details, manual, impact, components, author,
//	        parent_incident_id)
//	    manual = 1: opened by an operator (check_name ''); its state and
//	    resolved_at follow its latest update. parent_incident_id: the
//	    incident of a depends_on check that suppressed this one's pages
//	    ('' if none; migration 4).
//	incident_updates(id PK, incident_id, status, body, created_at, author,
//	        stored_at)
//	    operators' updates; inserted by id, so a duplicate is a no-op.
//	    Indexes (incident_id, created_at) and (created_at).
//
// A node's own buckets are maintained as results arrive, in the same
// transaction as the raw insert: the writer adds the batch to the current
// minute, hour and day buckets (kept in an in-memory cache of recent
// buckets; a miss reads the bucket from the database unless it is newer
// than any stored one) and upserts them. Peers' buckets arrive through
// MergeBuckets, which keeps the larger version of each and re-derives the
// hour and day buckets above them (series.go). So DailyUptime (the 90-day
// bar), MinuteStats, Series, Total and Uptime never scan raw rows, and a
// region's figure is the sum of its nodes' buckets. Schema 2's per-region
// rollups of the node's own results were moved into series by migration 3.
//
// # Latency histogram
//
// Each bucket keeps 64 fixed log-scale buckets: one below 0.1 ms, 62
// between 0.1 ms and 60 s with a ratio of f = 600000^(1/62) ≈ 1.2394 between
// bounds, and one for 60 s and more. It is stored as a BLOB of (bucket byte,
// uvarint count) pairs for the non-empty buckets only (a few bytes per
// minute bucket). Histograms of several nodes, regions or days merge exactly:
// this is how a region's 95th percentile is computed from its nodes'
// buckets. The
// 95th percentile is the geometric middle of the bucket holding the
// nearest-rank sample, clamped to the exact min and max: between 0.1 ms and
// 60 s it is within a factor √f ≈ 1.113 of the true value (at most +11.4 %
// / −10.2 %); below 0.1 ms the error is under 0.1 ms; beyond 60 s the exact
// maximum is reported.
//
// # Retention
//
// The writer prunes at Open and every Options.PruneInterval (10 min), using
// Options.Now: raw results older than RetainRaw (7 days); buckets by whole
// blocks (a day of minutes, 10 days of hours, 100 days of days, aligned to
// the Unix epoch), a block once it ended before now minus RetainMinute (30
// days), RetainHour (90 days) or RetainDaily (0 = forever), so that every
// node holds the same blocks (Horizon). It deletes at most PruneChunk
// (2000) rows per transaction and serves queued writes between chunks, so
// it never holds the write lock for long. A negative retention keeps
// forever. State changes, incidents and incident updates are kept forever.
//
// # Uptime values
//
// Uptime is a fraction in [0, 1]; a period without results reports
// NoData (-1) rather than NaN, so it encodes as JSON.
package store
