package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// Watch reloads the node's configuration from path when hup receives (the
// command's SIGHUP) and when the file's content changes (polled every 2 s:
// editors that replace the file and mounted ConfigMaps that swap a symlink
// are both seen). An invalid file is rejected with its errors, one log
// line each, and the running configuration stays. It returns when ctx
// ends.
func (n *Node) Watch(ctx context.Context, path string, hup <-chan os.Signal) {
	w := &watcher{path: path, log: n.log, reload: n.Reload}
	if b, err := os.ReadFile(path); err == nil {
		w.last = sha256.Sum256(b)
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			w.log.Info("SIGHUP: reloading the configuration", "config", path)
			w.apply(true)
		case <-t.C:
			w.apply(false)
		}
	}
}

type watcher struct {
	path   string
	log    *slog.Logger
	last   [sha256.Size]byte
	reload func(*config.Config) (ReloadResult, error)
}

// apply reloads when forced (SIGHUP) or when the file's content changed.
func (w *watcher) apply(force bool) {
	b, err := os.ReadFile(w.path)
	if err != nil {
		if force {
			w.log.Error("config reload failed; keeping the running configuration", "config", w.path, "err", err)
		}
		return
	}
	sum := sha256.Sum256(b)
	if !force && sum == w.last {
		return
	}
	w.last = sum
	if !force {
		w.log.Info("configuration file changed: reloading", "config", w.path)
	}
	cfg, err := config.Parse(w.path, b, nil)
	if err != nil {
		var list config.Errors
		if errors.As(err, &list) {
			for _, e := range list {
				w.log.Error("config reload rejected; keeping the running configuration", "problem", e.Error())
			}
		} else {
			w.log.Error("config reload rejected; keeping the running configuration", "err", err)
		}
		return
	}
	res, err := w.reload(cfg)
	if err != nil {
		w.log.Error("config reload failed", "config", w.path, "err", err)
	} else {
		w.log.Info("configuration reloaded", "config", w.path, "checks", len(cfg.Checks), "added", len(res.Added),
			"removed", len(res.Removed), "changed", len(res.Changed), "summary", res.String())
	}
	for _, s := range res.Ignored {
		w.log.Warn("config reload: this setting changed but needs a restart; the running value stays", "setting", s)
	}
}
