package notifier

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// discord posts one embed to a Discord webhook.
type discord struct{ base }

// Embed colours.
const (
	colorDown = 0xD93025
	colorUp   = 0x1E8E3E
	colorTest = 0x1A73E8
	colorWarn = 0xF29900 // flapping, coverage lost
)

func eventColor(e Event) int {
	if e.IsNotice() {
		if e.Action == ActionResolve {
			return colorUp
		}
		return colorWarn
	}
	switch e.Action {
	case ActionResolve:
		return colorUp
	case ActionTest:
		return colorTest
	}
	return colorDown
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func discordBody(e Event) map[string]any {
	embed := map[string]any{
		"title": truncate(Headline(e), 256),
		"color": eventColor(e),
	}
	if e.StatusPageURL != "" {
		embed["url"] = e.StatusPageURL
	}
	if lines := regionLines(e.Regions); len(lines) > 0 {
		embed["description"] = truncate("```\n"+strings.Join(lines, "\n")+"\n```", 4096)
	}
	if lines := memberLines(e); len(lines) > 0 { // a grouped page's checks
		embed["description"] = truncate(strings.Join(lines, "\n"), 4096)
	}
	var fs []map[string]any
	for _, f := range fields(e) {
		if len(fs) == 25 {
			break
		}
		fs = append(fs, map[string]any{"name": f.Name, "value": truncate(f.Value, 1024), "inline": f.Name != "Target" && f.Name != "Status page"})
	}
	if len(fs) > 0 {
		embed["fields"] = fs
	}
	ts := e.StartedAt
	if e.ResolvedAt != nil {
		ts = *e.ResolvedAt
	}
	if !ts.IsZero() {
		embed["timestamp"] = ts.UTC().Format(time.RFC3339)
	}
	return map[string]any{"username": "Vantage", "embeds": []any{embed}}
}

func (d *discord) Send(ctx context.Context, e Event) (Receipt, error) {
	b, err := json.Marshal(discordBody(e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return d.postJSON(ctx, d.url, b, nil)
}
