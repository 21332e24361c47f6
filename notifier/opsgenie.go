package notifier

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
)

// opsgenie creates an alert with alias = incident id ("cert:CHECK:SERIAL"
// for a certificate warning) on trigger, adds a note
// to it for a reminder or a grouped page's update and closes it by alias on resolve. url is https://api.opsgenie.com (default) or
// https://api.eu.opsgenie.com.
type opsgenie struct{ base }

// ogPriority maps a check severity to an Opsgenie priority when the notifier
// sets none.
var ogPriority = map[string]string{"critical": "P1", "error": "P2", "warning": "P3", "info": "P5"}

func (o *opsgenie) priority(e Event) string {
	if e.IsMaintenance() {
		return ogPriority[MaintenanceSeverity] // P5: for information
	}
	if e.IsNotice() {
		// A notice about the monitoring is at most P3 (warning).
		if o.cfg.Priority == "P4" || o.cfg.Priority == "P5" {
			return o.cfg.Priority
		}
		return ogPriority[NoticeSeverity]
	}
	if o.cfg.Priority != "" {
		return o.cfg.Priority
	}
	if e.Action == ActionTest {
		return "P5"
	}
	if p := ogPriority[e.Severity]; p != "" {
		return p
	}
	return "P1"
}

func (o *opsgenie) createBody(e Event) map[string]any {
	details := map[string]string{}
	for _, f := range fields(e) {
		details[f.Name] = f.Value
	}
	for _, name := range sortedRegions(e.Regions) {
		details["region "+name] = regionDetail(e.Regions[name])
	}
	tags := []string{"vantage"}
	if e.Check != "" {
		tags = append(tags, e.Check)
	}
	if e.Kind != KindIncident {
		tags = append(tags, e.Kind)
	}
	body := map[string]any{
		"message":     truncate(Headline(e), 130),
		"alias":       alertKey(e),
		"description": truncate(Text(e), 15000),
		"priority":    o.priority(e),
		"source":      "vantage",
		"tags":        tags,
		"details":     details,
	}
	if e.Target != "" {
		body["entity"] = e.Target
	} else if e.IsGroup() {
		body["entity"] = "group " + e.Group
	}
	return body
}

func (o *opsgenie) Send(ctx context.Context, e Event) (Receipt, error) {
	h := http.Header{}
	h.Set("Authorization", "GenieKey "+o.cfg.APIKey)
	switch e.Action {
	case ActionResolve:
		b, _ := json.Marshal(map[string]any{"source": "vantage", "note": Headline(e)})
		u := o.url + "/v2/alerts/" + url.PathEscape(alertKey(e)) + "/close?identifierType=alias"
		return o.postJSON(ctx, u, b, h)
	case ActionRepeat, ActionUpdate:
		// A reminder, or a grouped page's update, is a note on the open
		// alert.
		b, _ := json.Marshal(map[string]any{"source": "vantage", "note": Headline(e)})
		u := o.url + "/v2/alerts/" + url.PathEscape(alertKey(e)) + "/notes?identifierType=alias"
		return o.postJSON(ctx, u, b, h)
	}
	b, err := json.Marshal(o.createBody(e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return o.postJSON(ctx, o.url+"/v2/alerts", b, h)
}
