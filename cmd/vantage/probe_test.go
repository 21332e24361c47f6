package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/node"
)

// threeRegions starts one in-process node per region on loopback and
// returns their handlers' servers, once every node sees the others alive.
func threeRegions(t *testing.T, cfgText string) []*httptest.Server {
	t.Helper()
	path := writeFile(t, "probe.yaml", cfgText)
	key := make([]byte, 32)
	rand.Read(key)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []*node.Node
	var srvs []*httptest.Server
	for _, region := range []string{"eu", "us", "ap"} {
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		g := &cluster.Config{Name: region + "-1", Region: region, Bind: "127.0.0.1:0", Profile: "local", Key: key, Logger: log}
		if len(nodes) > 0 {
			g.Join = []string{nodes[0].GossipAddr()}
		}
		dir := t.TempDir()
		n, err := node.New(context.Background(), node.Options{Config: cfg, Name: g.Name, Region: region, Logger: log, Gossip: g,
			DBPath: filepath.Join(dir, "v.db"), OutboxPath: filepath.Join(dir, "outbox.db")})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
		srv := httptest.NewServer(n.Handler())
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range nodes {
		for {
			alive := 0
			for _, m := range n.Status().Cluster.Members {
				if m.State == "alive" {
					alive++
				}
			}
			if alive == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the three nodes did not see each other")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return srvs
}

func TestProbeCommand(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(target.Close)
	srvs := threeRegions(t, fmt.Sprintf(`
cluster:
  regions: [eu, us, ap]
  gossip: local
checks:
  - name: api
    type: http
    url: %s
statuspage:
  api_token: %s
`, target.URL, cliToken))
	t.Setenv("VANTAGE_API_TOKEN", cliToken)

	var out, errb bytes.Buffer
	start := time.Now()
	code := runMain([]string{"probe", target.URL + "/health", "--addr", srvs[1].URL}, &out, &errb)
	wall := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	text := out.String()
	host := strings.TrimPrefix(target.URL, "http://")
	for _, region := range []string{"eu", "us", "ap"} {
		line := ""
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, region+" ") {
				line = l
			}
		}
		if !strings.Contains(line, region+"-1") || !strings.Contains(line, " up ") || !strings.Contains(line, host) || !strings.Contains(line, "200") {
			t.Fatalf("no line for %s:\n%s", region, text)
		}
	}
	if !strings.Contains(text, "verdict: up") {
		t.Fatalf("no verdict:\n%s", text)
	}
	t.Logf("vantage probe of a healthy loopback target from 3 regions: %v wall time\n%s", wall, text)
	if wall > 2*time.Second {
		t.Fatalf("vantage probe took %v", wall)
	}

	// A refused port: down everywhere, exit 3; flags after the target.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	out.Reset()
	if code := runMain([]string{"probe", "--addr", srvs[0].URL, closed, "--timeout", "1s"}, &out, &errb); code != exitProbeDown ||
		!strings.Contains(out.String(), "connect_refused") || !strings.Contains(out.String(), "verdict: down") {
		t.Fatalf("closed port: exit %d:\n%s", code, out.String())
	}
	out.Reset()
	if code := runMain([]string{"probe", "--json", "--addr", srvs[0].URL, closed, "--type", "tcp"}, &out, &errb); code != exitProbeDown ||
		!strings.Contains(out.String(), `"verdict": "down"`) {
		t.Fatalf("json: exit %d: %s", code, out.String())
	}

	// Bad flags, a bad target, no token.
	for _, args := range [][]string{{"probe"}, {"probe", "a", "b"}, {"probe", "--bogus", "x"}} {
		if code := runMain(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d", args, code)
		}
	}
	errb.Reset()
	if code := runMain([]string{"probe", "--addr", srvs[0].URL, "http://"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "400") {
		t.Errorf("bad target: exit %d: %s", code, errb.String())
	}
	t.Setenv("VANTAGE_API_TOKEN", "")
	if code := runMain([]string{"probe", "--addr", srvs[0].URL, closed}, &out, &errb); code != 2 {
		t.Errorf("no token: exit %d", code)
	}
}
