package main

import (
	"strings"
	"testing"

	"github.com/vantage-dev/vantage/config"
)

func TestAPITokenSetting(t *testing.T) {
	path := writeFile(t, "t.yaml", "statuspage: {api_token: from-config-0123456789}\nchecks:\n  - {name: a, type: tcp, target: 127.0.0.1:1}\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	f := &runFlags{set: map[string]bool{}}
	s, err := resolveSettings(f, cfg, getenv)
	if err != nil || s.APIToken != "from-config-0123456789" {
		t.Fatalf("config token: %q %v", s.APIToken, err)
	}
	env["VANTAGE_API_TOKEN"] = "from-environment-0123456789"
	if s, err = resolveSettings(f, cfg, getenv); err != nil || s.APIToken != "from-environment-0123456789" {
		t.Fatalf("environment token: %q %v", s.APIToken, err)
	}
	env["VANTAGE_API_TOKEN"] = "short"
	if _, err = resolveSettings(f, cfg, getenv); err == nil || !strings.Contains(err.Error(), "VANTAGE_API_TOKEN must be at least 16") {
		t.Fatalf("short environment token: %v", err)
	}
}
