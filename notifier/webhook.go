package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// SignatureHeader carries the HMAC-SHA256 of a webhook body: "sha256=<hex>".
const SignatureHeader = "X-Vantage-Signature"

// webhook POSTs the contract's JSON document to url, signed with secret when
// one is set, with the notifier's custom headers.
type webhook struct{ base }

// Webhook event names.
const (
	WebhookDown             = "down"
	WebhookUp               = "up"
	WebhookTest             = "test"
	WebhookRepeat           = "repeat"            // a reminder: still down
	WebhookFlapping         = "flapping"          // notifications paused
	WebhookStable           = "stable"            // stopped flapping
	WebhookCoverageLost     = "coverage_lost"     // too few regions can see the check
	WebhookCoverageRestored = "coverage_restored" // enough regions see it again
	WebhookCertExpiring     = "cert_expiring"     // a served certificate expires within expect.cert_expiry
	WebhookCertRenewed      = "cert_renewed"      // a newer certificate is served
	WebhookUpdate           = "update"            // a grouped page lists more checks
	// A maintenance window began or ended (a route's notify_maintenance).
	WebhookMaintenanceStarted = "maintenance_started"
	WebhookMaintenanceEnded   = "maintenance_ended"
)

// WebhookBody is the JSON document a webhook notifier POSTs. The
// contract's fields come first, then message (always), then fields that
// appear only in the events that have them.
type WebhookBody struct {
	Event      string                `json:"event"` // see the Webhook* constants
	IncidentID string                `json:"incident_id"`
	Check      string                `json:"check"`
	Target     string                `json:"target"`
	StartedAt  time.Time             `json:"started_at"`
	ResolvedAt *time.Time            `json:"resolved_at"` // null unless up, stable or coverage_restored
	Regions    map[string]RegionVote `json:"regions"`

	Message       string `json:"message,omitempty"`        // the headline (Headline)
	DisplayName   string `json:"display_name,omitempty"`   // the check's display name, when it has one
	Test          bool   `json:"test,omitempty"`           // the up that resolves a `vantage notify test`
	Severity      string `json:"severity,omitempty"`       // warning for notices (flapping, coverage, cert_*)
	Seq           int    `json:"seq,omitempty"`            // repeat: the reminder's number, from 1
	Changes       int    `json:"changes,omitempty"`        // flapping: state changes within window_seconds
	WindowSeconds int64  `json:"window_seconds,omitempty"` // flapping, stable
	RegionsSeeing *int   `json:"regions_seeing,omitempty"` // coverage_*: regions that can see the check
	RegionsTotal  int    `json:"regions_total,omitempty"`  // coverage_*: regions expected to vote
	// cert_*: the certificate warned about; cert_renewed: the newer one.
	Cert    *CertInfo `json:"cert,omitempty"`
	Renewed *CertInfo `json:"renewed,omitempty"`
	// maintenance_*: the window (its title, checks, scheduled start and
	// end, and whether it was cancelled before its end).
	Maintenance *MaintenanceInfo `json:"maintenance,omitempty"`
	// A grouped page (down, update, repeat, up with "kind": "group"):
	// check and target are empty, group names the group and members lists
	// its checks; in an update seq is the number of checks listed and the
	// checks that joined since the previous event have "new": true.
	Kind    string        `json:"kind,omitempty"`
	Group   string        `json:"group,omitempty"`
	Members []GroupMember `json:"members,omitempty"`
	// SnapshotsURL links the incident's failure snapshots (signed).
	SnapshotsURL string `json:"snapshots_url,omitempty"`
}

// NewWebhookBody builds the document for e.
func NewWebhookBody(e Event) WebhookBody {
	w := WebhookBody{
		Event:      "down",
		IncidentID: e.IncidentID,
		Check:      e.Check,
		Target:     e.Target,
		StartedAt:  e.StartedAt.UTC(),
		Regions:    nonNilRegions(e.Regions),
		Message:    Headline(e),
	}
	if e.DisplayName != e.Check {
		w.DisplayName = e.DisplayName
	}
	w.SnapshotsURL = e.SnapshotsURL
	switch e.Action {
	case ActionResolve:
		w.Event, w.Test = WebhookUp, e.Test
		if e.ResolvedAt != nil {
			t := e.ResolvedAt.UTC()
			w.ResolvedAt = &t
		}
	case ActionTest:
		w.Event = WebhookTest
	case ActionRepeat:
		w.Event, w.Seq = WebhookRepeat, e.Seq
	case ActionUpdate:
		w.Event, w.Seq = WebhookUpdate, e.Seq
	}
	switch e.Kind {
	case KindFlapping:
		w.Event, w.WindowSeconds = WebhookFlapping, int64(e.Window/time.Second)
		if e.Action == ActionResolve {
			w.Event = WebhookStable
		} else {
			w.Changes = e.Changes
		}
	case KindCoverage:
		w.Event = WebhookCoverageLost
		if e.Action == ActionResolve {
			w.Event = WebhookCoverageRestored
		}
		seeing := e.RegionsSeeing
		w.RegionsSeeing, w.RegionsTotal = &seeing, e.RegionsTotal
	case KindCert:
		w.Event, w.Cert = WebhookCertExpiring, e.Cert
		if e.Action == ActionResolve {
			w.Event, w.Renewed = WebhookCertRenewed, e.Renewed
		}
	case KindMaintenance:
		w.Event, w.Maintenance = WebhookMaintenanceStarted, e.Maintenance
		if e.Action == ActionResolve {
			w.Event = WebhookMaintenanceEnded
		}
	}
	if e.IsNotice() {
		w.Severity = NoticeSeverity
		if e.IsMaintenance() {
			w.Severity = MaintenanceSeverity
		}
	}
	if e.IsGroup() {
		w.Kind, w.Group, w.Members = KindGroup, e.Group, e.Members
	}
	return w
}

// Sign returns the X-Vantage-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (w *webhook) Send(ctx context.Context, e Event) (Receipt, error) {
	b, err := json.Marshal(NewWebhookBody(e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	h := http.Header{}
	for k, v := range w.cfg.Headers {
		h.Set(k, v)
	}
	if w.cfg.Secret != "" {
		h.Set(SignatureHeader, Sign(w.cfg.Secret, b))
	}
	return w.postJSON(ctx, w.url, b, h)
}
