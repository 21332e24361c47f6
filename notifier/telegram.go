package notifier

import (
	"context"
	"encoding/json"
)

// telegram sends a plain-text message through the Bot API:
// POST {url}/bot{token}/sendMessage.
type telegram struct{ base }

func telegramBody(chatID string, e Event) map[string]any {
	return map[string]any{
		"chat_id":                  chatID,
		"text":                     truncate(Text(e), 4096),
		"disable_web_page_preview": true,
	}
}

func (t *telegram) Send(ctx context.Context, e Event) (Receipt, error) {
	b, err := json.Marshal(telegramBody(t.cfg.ChatID, e))
	if err != nil {
		return Receipt{}, &SendError{Body: err.Error()}
	}
	u := t.url + "/bot" + t.cfg.BotToken + "/sendMessage"
	r, err := t.postJSON(ctx, u, b, nil)
	if se, ok := err.(*SendError); ok {
		se.Body = redactURL(se.Body, t.cfg.BotToken)
	}
	return r, err
}
