package main

import (
	"testing"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

// The outbox paces a gated provider as the provider itself: the wrapper
// must not hide its rate limit.
func TestGatedProviderKeepsRateLimit(t *testing.T) {
	nc := config.Notifier{Name: "chat", Type: "slack", URL: "https://hooks.example.com/a"}
	p, err := notifier.New(nc, notifier.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := notifier.RateOf(nc)
	if want.Every <= 0 {
		t.Fatalf("test premise: slack has a default rate, got %+v", want)
	}
	var g notifier.Provider = gatedProvider{Provider: p}
	rl, ok := g.(notifier.RateLimited)
	if !ok || rl.RateLimit() != want {
		t.Fatalf("gated provider rate %v (RateLimited %v), want %+v", rl, ok, want)
	}
}
