package main

// Operators' incident updates and manual incidents: the node takes them
// from the status page's write API (it is the page's statuspage.Writer),
// stores them and shares them with the cluster, so every node shows the
// same.
//
// Sharing has two paths. At once, each write is gossiped as a kindUpdate
// message: its JSON, deflated and cut into chunks that each fit a gossip
// packet (cluster.MaxMessageSize), reassembled and checked by digest on
// the receiving nodes. For a node that was down, cut off or joins later,
// the node's push-pull state carries the recent writes (the updates of
// open incidents and of the last 7 days, and the manual incidents open or
// active then, capped), so anti-entropy delivers whatever a node missed.
// Stores are idempotent by update id, so an update that arrives by both
// paths, or twice, is stored once; a manual incident's state follows its
// latest update whatever order they arrive in.

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/statuspage"
	"github.com/vantage-dev/vantage/store"
)

// kindUpdate is the gossip kind of an operator's write (one chunk of it).
// Its value is fixed, apart from the kinds numbered in mesh.go.
const kindUpdate byte = cluster.MinUserKind + 16

const (
	// chunkData is the most data bytes in one chunk: with the 19-byte
	// header and the envelope of a node named with 253 bytes it stays
	// within cluster.MaxMessageSize.
	chunkData = 600
	// maxChunks bounds one write's chunks (a 10 KB update takes a few).
	maxChunks = 64
	// maxWrite bounds a write's JSON after inflating.
	maxWrite = 256 << 10
	// partialTTL is how long the chunks of an incomplete write are kept.
	partialTTL = 2 * time.Minute
	// maxPartials bounds the incomplete writes kept at once.
	maxPartials = 64

	// shareWindow, shareMax and shareBytes bound the writes in the
	// push-pull state: those of the last 7 days and of open incidents, at
	// most 200 updates (newest first) and about 256 KB of text.
	shareWindow = 7 * 24 * time.Hour
	shareMax    = 200
	shareBytes  = 256 << 10
	// shareRefresh re-reads the shared writes from the store this often
	// even without a change, so old ones age out.
	shareRefresh = 10 * time.Minute
)

// wireIncident is a manual incident on the wire.
type wireIncident struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	Impact     string    `json:"impact,omitempty"`
	Components []string  `json:"components,omitempty"`
	Author     string    `json:"author,omitempty"`
	Started    time.Time `json:"started"`
	Details    string    `json:"details,omitempty"`
}

// wireUpdate is an incident update on the wire.
type wireUpdate struct {
	ID       string    `json:"id"`
	Incident string    `json:"incident"`
	Status   string    `json:"status"`
	Body     string    `json:"body"`
	Author   string    `json:"author,omitempty"`
	At       time.Time `json:"at"`
}

// updateMsg is one write: an update, with its incident when that is a
// manual one (so it can be stored without it having arrived first).
type updateMsg struct {
	Incident *wireIncident `json:"incident,omitempty"`
	Update   wireUpdate    `json:"update"`
}

// updateState is what push-pull carries of the operators' writes.
type updateState struct {
	Incidents []wireIncident `json:"incidents,omitempty"`
	Updates   []wireUpdate   `json:"updates,omitempty"`
}

func toWireIncident(i store.Incident) wireIncident {
	return wireIncident{ID: i.ID, Title: i.Title, Impact: i.Impact, Components: i.Components, Author: i.Author,
		Started: i.StartedAt.UTC(), Details: i.Details}
}

func (w wireIncident) incident() store.Incident {
	return store.Incident{ID: w.ID, Title: w.Title, Impact: w.Impact, Components: w.Components, Author: w.Author,
		StartedAt: w.Started, Details: w.Details, Manual: true}
}

func toWireUpdate(u store.IncidentUpdate) wireUpdate {
	return wireUpdate{ID: u.ID, Incident: u.IncidentID, Status: u.Status, Body: u.Body, Author: u.Author, At: u.CreatedAt.UTC()}
}

func (w wireUpdate) update() store.IncidentUpdate {
	return store.IncidentUpdate{ID: w.ID, IncidentID: w.Incident, Status: w.Status, Body: w.Body, Author: w.Author, CreatedAt: w.At}
}

// updateShare is the node's bookkeeping of shared writes. Its zero value
// is ready; it never takes node.mu.
type updateShare struct {
	mu       sync.Mutex
	state    *updateState // cached push-pull state; nil = re-read
	readAt   time.Time
	known    map[string]bool // ids of updates and manual incidents stored here (bounded)
	partials map[[16]byte]*partialWrite
	done     map[[16]byte]time.Time // writes reassembled lately: late chunks are ignored
}

type partialWrite struct {
	parts [][]byte
	got   int
	first time.Time
}

var _ statuspage.Writer = (*node)(nil)

// apiToken is the write API's token: the resolved setting (flag or
// environment), else the config's.
func apiToken(o nodeOptions) string {
	if o.APIToken != "" {
		return o.APIToken
	}
	return o.Config.StatusPage.APIToken
}

// PostUpdate implements statuspage.Writer: store, then share.
func (n *node) PostUpdate(ctx context.Context, u store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	u.Author = n.opts.Name
	if u.CreatedAt.IsZero() {
		u.CreatedAt = n.now()
	}
	inc, u, err := n.store.PostIncidentUpdate(ctx, u)
	if err != nil {
		return inc, u, err
	}
	n.shareWrite(inc, u)
	return inc, u, nil
}

// OpenIncident implements statuspage.Writer: a manual incident.
func (n *node) OpenIncident(ctx context.Context, inc store.Incident, first store.IncidentUpdate) (store.Incident, store.IncidentUpdate, error) {
	inc.Author, first.Author = n.opts.Name, n.opts.Name
	if inc.StartedAt.IsZero() {
		inc.StartedAt = n.now()
	}
	inc, first, err := n.store.OpenManualIncident(ctx, inc, first)
	if err != nil {
		return inc, first, err
	}
	n.log.Info("manual incident opened", "incident_id", inc.ID, "title", inc.Title, "impact", inc.Impact)
	n.shareWrite(inc, first)
	return inc, first, nil
}

// shareWrite gossips a write taken here.
func (n *node) shareWrite(inc store.Incident, u store.IncidentUpdate) {
	n.upd.mu.Lock()
	n.upd.state = nil
	n.markKnownLocked(u.ID)
	if inc.Manual {
		n.markKnownLocked(inc.ID)
	}
	n.upd.mu.Unlock()
	cl := n.cl.Load()
	if cl == nil {
		return
	}
	m := updateMsg{Update: toWireUpdate(u)}
	if inc.Manual {
		w := toWireIncident(inc)
		m.Incident = &w
	}
	chunks, err := encodeWrite(m)
	if err != nil {
		n.log.Error("gossip incident update", "incident_id", u.IncidentID, "err", err)
		return
	}
	for i, c := range chunks {
		name := fmt.Sprintf("update/%s/%d", hex.EncodeToString(c[1:17]), i)
		if err := cl.BroadcastMessage(kindUpdate, name, c); err != nil {
			n.log.Warn("gossip incident update", "incident_id", u.IncidentID, "err", err)
			return // push-pull delivers it
		}
	}
	n.log.Debug("incident update gossiped", "incident_id", u.IncidentID, "update_id", u.ID, "chunks", len(chunks))
}

// encodeWrite turns a write into chunks: version 1, the 16-byte digest of
// the deflated JSON, the chunk's index and the count, then the data.
func encodeWrite(m updateMsg) ([][]byte, error) {
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.BestCompression)
	if err := json.NewEncoder(zw).Encode(m); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	count := (len(data) + chunkData - 1) / chunkData
	if count > maxChunks {
		return nil, fmt.Errorf("update of %d bytes is too large to gossip", len(data))
	}
	sum := sha256.Sum256(data)
	var out [][]byte
	for i := range count {
		part := data[i*chunkData : min(len(data), (i+1)*chunkData)]
		c := make([]byte, 0, 19+len(part))
		c = append(c, 1)
		c = append(c, sum[:16]...)
		c = append(c, byte(i), byte(count))
		out = append(out, append(c, part...))
	}
	return out, nil
}

// onUpdateChunk takes one chunk from gossip; once a write is complete it
// is stored and shown.
func (n *node) onUpdateChunk(payload []byte) {
	m, ok, err := n.addChunk(payload, time.Now())
	if err != nil {
		n.log.Warn("gossip incident update", "err", err)
		return
	}
	if !ok {
		return
	}
	var incs []store.Incident
	if m.Incident != nil {
		incs = append(incs, m.Incident.incident())
	}
	n.mergeWrites(incs, []store.IncidentUpdate{m.Update.update()})
}

// addChunk files a chunk; it returns the write when it is complete.
func (n *node) addChunk(c []byte, now time.Time) (updateMsg, bool, error) {
	var m updateMsg
	if len(c) < 20 || c[0] != 1 {
		return m, false, errors.New("malformed chunk")
	}
	var id [16]byte
	copy(id[:], c[1:17])
	i, count := int(c[17]), int(c[18])
	if count == 0 || count > maxChunks || i >= count {
		return m, false, fmt.Errorf("chunk %d of %d", i, count)
	}
	s := &n.upd
	s.mu.Lock()
	if s.partials == nil {
		s.partials, s.done = map[[16]byte]*partialWrite{}, map[[16]byte]time.Time{}
	}
	for k, p := range s.partials {
		if now.Sub(p.first) > partialTTL {
			delete(s.partials, k)
		}
	}
	for k, at := range s.done {
		if now.Sub(at) > 10*time.Minute {
			delete(s.done, k)
		}
	}
	if _, ok := s.done[id]; ok {
		s.mu.Unlock()
		return m, false, nil
	}
	p := s.partials[id]
	if p == nil {
		if len(s.partials) >= maxPartials {
			var oldest [16]byte
			var at time.Time
			for k, q := range s.partials {
				if at.IsZero() || q.first.Before(at) {
					oldest, at = k, q.first
				}
			}
			delete(s.partials, oldest)
		}
		p = &partialWrite{parts: make([][]byte, count), first: now}
		s.partials[id] = p
	}
	if len(p.parts) != count {
		s.mu.Unlock()
		return m, false, errors.New("chunk counts disagree")
	}
	if p.parts[i] == nil {
		p.parts[i] = bytes.Clone(c[19:])
		p.got++
	}
	if p.got < count {
		s.mu.Unlock()
		return m, false, nil
	}
	delete(s.partials, id)
	s.done[id] = now
	s.mu.Unlock()

	data := bytes.Join(p.parts, nil)
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:16], id[:]) {
		return m, false, errors.New("reassembled update does not match its digest")
	}
	js, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data)), maxWrite+1))
	if err != nil || len(js) > maxWrite {
		return m, false, fmt.Errorf("inflate update: %v (%d bytes)", err, len(js))
	}
	if err := json.Unmarshal(js, &m); err != nil {
		return m, false, fmt.Errorf("decode update: %w", err)
	}
	return m, true, nil
}

func (n *node) markKnownLocked(id string) {
	if n.upd.known == nil || len(n.upd.known) > 4*shareMax {
		n.upd.known = map[string]bool{} // forget; the store dedupes anyway
	}
	n.upd.known[id] = true
}

// mergeWrites stores writes from other nodes (those not known here) and
// shows the new ones.
func (n *node) mergeWrites(incs []store.Incident, ups []store.IncidentUpdate) {
	n.upd.mu.Lock()
	var newIncs []store.Incident
	var newUps []store.IncidentUpdate
	for _, i := range incs {
		if !n.upd.known[i.ID] {
			newIncs = append(newIncs, i)
		}
	}
	for _, u := range ups {
		if !n.upd.known[u.ID] {
			newUps = append(newUps, u)
		}
	}
	n.upd.mu.Unlock()
	if len(newIncs) == 0 && len(newUps) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	added, err := n.store.MergeIncidents(ctx, newIncs, newUps)
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			n.log.Error("store gossiped incident updates", "err", err)
		}
		return
	}
	n.upd.mu.Lock()
	for _, i := range newIncs {
		n.markKnownLocked(i.ID)
	}
	for _, u := range newUps {
		n.markKnownLocked(u.ID)
	}
	if len(added) > 0 || len(newIncs) > 0 {
		n.upd.state = nil
	}
	n.upd.mu.Unlock()
	if len(newIncs) > 0 && len(added) == 0 {
		n.http.Refresh()
	}
	for _, u := range added {
		inc, err := n.store.Incident(ctx, u.IncidentID)
		if err != nil {
			// An update of an incident this node never saw (it was away
			// while a check's incident opened): kept, shown if it comes.
			n.log.Debug("incident update for an unknown incident", "incident_id", u.IncidentID, "update_id", u.ID)
			continue
		}
		n.log.Info("incident update received", "incident_id", u.IncidentID, "status", u.Status, "update_id", u.ID, "author", u.Author)
		n.http.PublishIncident(inc, u)
	}
}

// updatesForPeers returns the writes to put in the push-pull state. It
// reads the store only after a change or every shareRefresh, and never
// holds node.mu.
func (n *node) updatesForPeers() *updateState {
	n.upd.mu.Lock()
	if st := n.upd.state; st != nil && time.Since(n.upd.readAt) < shareRefresh {
		n.upd.mu.Unlock()
		if len(st.Incidents) == 0 && len(st.Updates) == 0 {
			return nil
		}
		return st
	}
	n.upd.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	incs, ups, err := n.store.RecentIncidentUpdates(ctx, n.now().Add(-shareWindow), shareMax)
	if err != nil {
		if !errors.Is(err, store.ErrClosed) {
			n.log.Warn("read incident updates to share", "err", err)
		}
		return nil
	}
	st := &updateState{}
	size := 0
	for _, i := range incs {
		st.Incidents = append(st.Incidents, toWireIncident(i))
	}
	for _, u := range ups {
		if size += len(u.Body) + 100; size > shareBytes {
			break
		}
		st.Updates = append(st.Updates, toWireUpdate(u))
	}
	n.upd.mu.Lock()
	n.upd.state, n.upd.readAt = st, time.Now()
	for _, i := range incs {
		n.markKnownLocked(i.ID)
	}
	for _, u := range ups {
		n.markKnownLocked(u.ID)
	}
	n.upd.mu.Unlock()
	if len(st.Incidents) == 0 && len(st.Updates) == 0 {
		return nil
	}
	return st
}

// mergeUpdateState takes a peer's writes from push-pull.
func (n *node) mergeUpdateState(st *updateState) {
	if st == nil {
		return
	}
	incs := make([]store.Incident, 0, len(st.Incidents))
	for _, i := range st.Incidents {
		incs = append(incs, i.incident())
	}
	ups := make([]store.IncidentUpdate, 0, len(st.Updates))
	for _, u := range st.Updates {
		ups = append(ups, u.update())
	}
	n.mergeWrites(incs, ups)
}
