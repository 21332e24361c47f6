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

// WebhookBody is the JSON document a webhook notifier POSTs.
type WebhookBody struct {
	Event      string                `json:"event"` // "down", "up" or "test"
	IncidentID string                `json:"incident_id"`
	Check      string                `json:"check"`
	Target     string                `json:"target"`
	StartedAt  time.Time             `json:"started_at"`
	ResolvedAt *time.Time            `json:"resolved_at"` // null in a down event
	Regions    map[string]RegionVote `json:"regions"`
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
	}
	switch e.Action {
	case ActionResolve:
		w.Event = "up"
		if e.ResolvedAt != nil {
			t := e.ResolvedAt.UTC()
			w.ResolvedAt = &t
		}
	case ActionTest:
		w.Event = "test"
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
