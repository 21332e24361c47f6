package statuspage

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Public and operator views. Without a token, nothing the server answers
// shows a check's target, a raw error message (which may name internal
// addresses), or a member's address, version or config hash: the public
// view of /api/v1/status keeps names, states, votes, error codes,
// latencies, phases and incident ids; the websocket's events carry no
// messages; the history API leaves messages out. With Authorization:
// Bearer API_TOKEN, /api/v1/status and the history API include them.

// publicStatus is st without targets, raw error messages, member
// addresses, versions and config hashes, or the reasons a region may not
// vote (they name nodes' failures in words). st is not modified; what is
// unchanged is shared.
func publicStatus(st *Status) *Status {
	if st == nil {
		return nil
	}
	out := *st
	out.Node.Version = ""
	if st.Cluster.Members != nil {
		out.Cluster.Members = make([]Member, len(st.Cluster.Members))
		for i, m := range st.Cluster.Members {
			m.Addr, m.Version, m.ConfigHash = "", "", ""
			out.Cluster.Members[i] = m
		}
	}
	if st.Cluster.Regions != nil {
		out.Cluster.Regions = make(map[string]RegionInfo, len(st.Cluster.Regions))
		for r, ri := range st.Cluster.Regions {
			ri.Reason = ""
			out.Cluster.Regions[r] = ri
		}
	}
	if st.Checks != nil {
		out.Checks = make([]CheckStatus, len(st.Checks))
		for i, c := range st.Checks {
			c.Target = ""
			c.Regions = publicVotes(c.Regions)
			out.Checks[i] = c
		}
	}
	return &out
}

// publicVotes is regions without messages; regions itself when none has
// one.
func publicVotes(regions map[string]*RegionVote) map[string]*RegionVote {
	clean := true
	for _, v := range regions {
		if v != nil && v.Message != "" {
			clean = false
			break
		}
	}
	if clean {
		return regions
	}
	out := make(map[string]*RegionVote, len(regions))
	for r, v := range regions {
		if v == nil {
			continue
		}
		cp := *v // the snapshot's votes are shared: never written
		cp.Message = ""
		out[r] = &cp
	}
	return out
}

// tokenOK reports whether the request carries the API token as a bearer
// token (compared in constant time); false when no token is configured.
func (s *Server) tokenOK(r *http.Request) bool {
	if s.apiToken() == "" {
		return false
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return false
	}
	// Hash both so the comparison takes the same time whatever the lengths.
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.apiToken()))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// operator reports whether a request that sent an Authorization header
// carries the API token; if not, it answers 401 itself.
func (s *Server) operator(w http.ResponseWriter, r *http.Request) bool {
	if s.tokenOK(r) {
		return true
	}
	if s.apiToken() == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vantage"`)
		writeErr(w, http.StatusUnauthorized, "no API token is configured on this node "+
			"(set statuspage.api_token in the config or VANTAGE_API_TOKEN); send no Authorization header for the public view")
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="vantage", error="invalid_token"`)
	s.opts.Logger.Warn("statuspage: wrong API token", "remote", r.RemoteAddr, "path", r.URL.Path)
	writeErr(w, http.StatusUnauthorized, "invalid bearer token; send no Authorization header for the public view")
	return false
}

type operatorKey struct{}

// withOperator marks a request's context as an operator's (it carried the
// API token).
func withOperator(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), operatorKey{}, true))
}

// isOperator reports whether a request was marked an operator's.
func isOperator(r *http.Request) bool {
	v, _ := r.Context().Value(operatorKey{}).(bool)
	return v
}

// publicMessage is a raw error message as a request may see it: only
// operators do.
func publicMessage(r *http.Request, msg string) string {
	if isOperator(r) {
		return msg
	}
	return ""
}
