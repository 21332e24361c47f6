package node

import (
	"crypto/subtle"
	"io"
	"net/http"
	"strings"

	"github.com/vantage-dev/vantage/config"
)

// pushTokens maps each push check to its token (rebuilt on reload).
func pushTokens(cfg *config.Config) map[string]string {
	m := map[string]string{}
	for _, c := range cfg.Checks {
		if c.Type == config.TypePush {
			m[c.Name] = c.Token
		}
	}
	return m
}

// servePush takes a push check's report: POST (or GET, for curl one-liners)
// /api/v1/push/{name} with Authorization: Bearer TOKEN or ?token=TOKEN, on
// any node. The receipt is gossiped: the whole cluster counts it.
func (n *Node) servePush(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<10))
	name := r.PathValue("name")
	want, ok := (*n.pushes.Load())[name]
	if !ok {
		http.Error(w, "no push check "+name, http.StatusNotFound)
		return
	}
	got := r.URL.Query().Get("token")
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage push"`)
		http.Error(w, "wrong or missing token", http.StatusUnauthorized)
		return
	}
	if err := n.mesh.Receipts.Take(name); err != nil {
		n.log.Warn("push receipt", "check", name, "err", err)
		http.Error(w, "not taken", http.StatusServiceUnavailable)
		return
	}
	n.log.Debug("push receipt", "check", name, "remote", r.RemoteAddr)
	_, _ = io.WriteString(w, "ok\n")
}
