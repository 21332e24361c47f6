package notifier

import (
	"context"
	"encoding/json"
	"strings"
)

// slack posts to a Slack incoming webhook: text (used for the push
// notification) plus Block Kit blocks.
type slack struct{ base }

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackBody(e Event) map[string]any {
	summary := Headline(e)
	blocks := []map[string]any{{
		"type": "section",
		"text": map[string]any{"type": "mrkdwn", "text": "*" + slackEscaper.Replace(summary) + "*"},
	}}
	var fs []map[string]any
	for _, f := range fields(e) {
		if f.Name == "Status page" {
			continue
		}
		if len(fs) == 10 { // Slack's limit per section
			break
		}
		fs = append(fs, map[string]any{"type": "mrkdwn", "text": "*" + f.Name + "*\n" + slackEscaper.Replace(f.Value)})
	}
	if len(fs) > 0 {
		blocks = append(blocks, map[string]any{"type": "section", "fields": fs})
	}
	if lines := memberLines(e); len(lines) > 0 {
		// A grouped page's checks, one a line (a section holds 3,000
		// characters).
		blocks = append(blocks, map[string]any{
			"type": "section",
			"text": map[string]any{"type": "mrkdwn", "text": "```" + truncate(slackEscaper.Replace(strings.Join(lines, "\n")), 2990) + "```"},
		})
	}
	if lines := regionLines(e.Regions); len(lines) > 0 {
		blocks = append(blocks, map[string]any{
			"type": "section",
			"text": map[string]any{"type": "mrkdwn", "text": "```" + slackEscaper.Replace(strings.Join(lines, "\n")) + "```"},
		})
	}
	if e.StatusPageURL != "" {
		blocks = append(blocks, map[string]any{
			"type": "context",
			"elements": []map[string]any{{
				"type": "mrkdwn", "text": "<" + slackEscaper.Replace(e.StatusPageURL) + "|Status page>",
			}},
		})
	}
	return map[string]any{"text": summary, "blocks": blocks}
}

func (s *slack) Send(ctx context.Context, e Event) (Receipt, error) {
	b, err := json.Marshal(slackBody(e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	return s.postJSON(ctx, s.url, b, nil)
}
