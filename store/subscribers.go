package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Subscriber is one version of a status page subscriber as the store
// keeps it (mesh.Subscriber on the wire): a visitor's confirmed email
// address or an operator's webhook, or a tombstone (Deleted) once it is
// removed. Versions of one id replace each other by (version, deleted,
// updated, author), as in the mesh.
type Subscriber struct {
	ID        string
	Version   uint64
	Deleted   bool
	Email     string
	URL       string
	Secret    string
	Author    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// subSchema is created on first use, as the maintenance table is.
const subSchema = `CREATE TABLE IF NOT EXISTS subscribers (
	id         TEXT    PRIMARY KEY,
	version    INTEGER NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0,  -- 1: a tombstone
	email      TEXT    NOT NULL DEFAULT '',
	url        TEXT    NOT NULL DEFAULT '',
	secret     TEXT    NOT NULL DEFAULT '',
	author     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,            -- unix ms
	updated_at INTEGER NOT NULL,            -- unix ms
	stored_at  INTEGER NOT NULL             -- unix ms, when this node stored this version
) WITHOUT ROWID`

const subCols = `id, version, deleted, email, url, secret, author, created_at, updated_at`

func (s *Subscriber) check() error {
	switch {
	case s.ID == "" || len(s.ID) > maxWriteID:
		return fmt.Errorf("store: subscriber id %q", s.ID)
	case s.Version == 0 || s.Version > 1<<53:
		return fmt.Errorf("store: subscriber %s: version %d", s.ID, s.Version)
	case s.CreatedAt.IsZero() || s.UpdatedAt.IsZero():
		return fmt.Errorf("store: subscriber %s without time", s.ID)
	}
	return nil
}

// PutSubscribers stores versions of subscribers, each unless the store
// holds a greater version of it, and returns the ids that changed.
func (s *Store) PutSubscribers(ctx context.Context, subs ...Subscriber) ([]string, error) {
	for i := range subs {
		if err := subs[i].check(); err != nil {
			return nil, err
		}
	}
	var changed []string
	err := s.exec(ctx, func(tx *sql.Tx) error {
		changed = changed[:0]
		if _, err := tx.Exec(subSchema); err != nil {
			return fmt.Errorf("store: subscribers table: %w", err)
		}
		stmt, err := tx.Prepare(`INSERT INTO subscribers(` + subCols + `, stored_at) VALUES (?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, email = excluded.email,
				url = excluded.url, secret = excluded.secret, author = excluded.author, created_at = excluded.created_at,
				updated_at = excluded.updated_at, stored_at = excluded.stored_at
			WHERE (excluded.version, excluded.deleted, excluded.updated_at, excluded.author) >
				(subscribers.version, subscribers.deleted, subscribers.updated_at, subscribers.author)`)
		if err != nil {
			return fmt.Errorf("store: put subscriber: %w", err)
		}
		defer stmt.Close()
		now := s.opts.Now().UnixMilli()
		for _, sub := range subs {
			res, err := stmt.Exec(sub.ID, int64(sub.Version), b2i(sub.Deleted), sub.Email, sub.URL, sub.Secret, sub.Author,
				sub.CreatedAt.UnixMilli(), sub.UpdatedAt.UnixMilli(), now)
			if err != nil {
				return fmt.Errorf("store: put subscriber %s: %w", sub.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("store: put subscriber %s: %w", sub.ID, err)
			} else if n > 0 {
				changed = append(changed, sub.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

// Subscribers returns every version stored, tombstones included.
func (s *Store) Subscribers(ctx context.Context) ([]Subscriber, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'subscribers'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("store: subscribers: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+subCols+` FROM subscribers ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: subscribers: %w", err)
	}
	defer rows.Close()
	var out []Subscriber
	for rows.Next() {
		var (
			sub              Subscriber
			version, deleted int64
			created, upd     int64
		)
		if err := rows.Scan(&sub.ID, &version, &deleted, &sub.Email, &sub.URL, &sub.Secret, &sub.Author, &created, &upd); err != nil {
			return nil, fmt.Errorf("store: subscribers: %w", err)
		}
		sub.Version, sub.Deleted = uint64(version), deleted != 0
		sub.CreatedAt, sub.UpdatedAt = msTime(created), msTime(upd)
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: subscribers: %w", err)
	}
	return out, nil
}

// PruneSubscribers deletes the tombstones made before deletedBefore.
func (s *Store) PruneSubscribers(ctx context.Context, deletedBefore time.Time) (int, error) {
	var n int64
	err := s.exec(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec(subSchema); err != nil {
			return fmt.Errorf("store: subscribers table: %w", err)
		}
		res, err := tx.Exec(`DELETE FROM subscribers WHERE deleted = 1 AND updated_at < ?`, deletedBefore.UnixMilli())
		if err != nil {
			return fmt.Errorf("store: prune subscribers: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err // the writer may still run fn: n is not read
	}
	return int(n), nil
}
