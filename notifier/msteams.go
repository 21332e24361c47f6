package notifier

import (
	"context"
	"encoding/json"
	"strings"
)

// msTeams posts an Adaptive Card to a Microsoft Teams Workflows ("Post to a
// channel when a webhook request is received") webhook.
type msTeams struct{ base }

func teamsBody(e Event) map[string]any {
	color := "Attention"
	switch e.Action {
	case ActionResolve:
		color = "Good"
	case ActionTest:
		color = "Accent"
	}
	if e.IsNotice() && e.Action != ActionResolve {
		color = "Warning"
	}
	body := []any{map[string]any{
		"type": "TextBlock", "text": Headline(e), "weight": "Bolder", "size": "Medium",
		"color": color, "wrap": true,
	}}
	var facts []any
	for _, f := range fields(e) {
		facts = append(facts, map[string]any{"title": f.Name, "value": f.Value})
	}
	if len(facts) > 0 {
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	if lines := memberLines(e); len(lines) > 0 { // a grouped page's checks
		body = append(body,
			map[string]any{"type": "TextBlock", "text": "Checks", "weight": "Bolder", "wrap": true},
			map[string]any{"type": "TextBlock", "text": "- " + strings.Join(lines, "\n- "), "wrap": true})
	}
	var regions []any
	for _, name := range sortedRegions(e.Regions) {
		regions = append(regions, map[string]any{"title": name, "value": regionDetail(e.Regions[name])})
	}
	if len(regions) > 0 {
		body = append(body,
			map[string]any{"type": "TextBlock", "text": "Regions", "weight": "Bolder", "wrap": true},
			map[string]any{"type": "FactSet", "facts": regions})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
	}
	if e.StatusPageURL != "" {
		card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Status page", "url": e.StatusPageURL}}
	}
	return map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	}
}

func (t *msTeams) Send(ctx context.Context, e Event) (Receipt, error) {
	b, err := json.Marshal(teamsBody(e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return t.postJSON(ctx, t.url, b, nil)
}
