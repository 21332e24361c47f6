package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadGossipKeyList(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 16)
	b64 := base64.StdEncoding.EncodeToString
	key, old, err := loadGossipKey("", b64(k1)+", "+b64(k2))
	if err != nil || !bytes.Equal(key, k1) || len(old) != 1 || !bytes.Equal(old[0], k2) {
		t.Fatalf("env list: %x %x %v", key, old, err)
	}
	file := filepath.Join(t.TempDir(), "key")
	os.WriteFile(file, []byte(b64(k2)+"\n"+b64(k1)+"\n"), 0o600)
	key, old, err = loadGossipKey(file, b64(k1))
	if err != nil || !bytes.Equal(key, k2) || len(old) != 1 || !bytes.Equal(old[0], k1) {
		t.Fatalf("file (wins over env): %x %x %v", key, old, err)
	}
	if key, old, err := loadGossipKey("", "  "); key != nil || old != nil || err != nil {
		t.Fatalf("empty: %x %x %v", key, old, err)
	}
	_, _, err = loadGossipKey("", b64(k1)+","+b64([]byte("short")))
	if err == nil || !strings.Contains(err.Error(), "gossip key 2 from VANTAGE_GOSSIP_KEY: 5 bytes") {
		t.Fatalf("bad second key: %v", err)
	}
}
