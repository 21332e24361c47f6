package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/vantage-dev/vantage/cluster"
	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/node"
	"github.com/vantage-dev/vantage/statuspage"
)

// runFlags are the flags of `vantage run`; each may also be set under node:
// in the config, and a flag given on the command line wins.
type runFlags struct {
	config                                string
	node, region, gossip, advertise, join string
	http, data, gossipKeyFile             string
	logFormat, logLevel, debugAddr        string
	insecureGossip                        bool
	set                                   map[string]bool
}

func newRunFlags(stderr io.Writer) (*flag.FlagSet, *runFlags) {
	f := &runFlags{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "config file (required)")
	fs.StringVar(&f.node, "node", "", "unique node name in the cluster (default: host name)")
	fs.StringVar(&f.region, "region", "", "region label of this node (default: local)")
	fs.StringVar(&f.gossip, "gossip", "", "memberlist bind address, TCP and UDP (default: 0.0.0.0:7946)")
	fs.StringVar(&f.advertise, "advertise", "", "address peers use to reach this node (default: bind address)")
	fs.StringVar(&f.join, "join", "", "seed nodes, HOST:PORT[,HOST:PORT...]")
	fs.StringVar(&f.http, "http", "", "status page, API and metrics address (default: :8080)")
	fs.StringVar(&f.data, "data", "", "directory for the SQLite database and node state (default: ./data)")
	fs.StringVar(&f.gossipKeyFile, "gossip-key-file", "", "file holding the gossip key (base64 of 16, 24 or 32 bytes); or set VANTAGE_GOSSIP_KEY")
	fs.BoolVar(&f.insecureGossip, "insecure-gossip", false, "allow a clustered node without a gossip key (unencrypted, unauthenticated)")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text (default) or json")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info (default), warn, error")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "serve Go profiling (/debug/pprof) on this separate address, e.g. 127.0.0.1:6060 (default: off)")
	return fs, f
}

// settings are the effective node settings: flags over file over defaults.
type settings struct {
	Node, Region, Gossip, Advertise, HTTP, Data string
	Join                                        []string
	GossipKey                                   []byte
	GossipOldKeys                               [][]byte // accepted, never sent with (key rotation)
	InsecureGossip                              bool
	LogFormat, LogLevel, DebugAddr              string
	// APIToken is the status page's write API token: VANTAGE_API_TOKEN,
	// else statuspage.api_token; "" disables the write API.
	APIToken        string
	apiTokenFromEnv bool // VANTAGE_API_TOKEN: kept over the file's on reload
}

// resolveSettings merges flags, the node: section and defaults, and checks
// the gossip key rule. Errors are configuration errors (exit 2).
func resolveSettings(f *runFlags, cfg *config.Config, getenv func(string) string) (*settings, error) {
	n := cfg.Node
	pick := func(flagName, flagVal, fileVal, def string) string {
		if f.set[flagName] {
			return flagVal
		}
		if fileVal != "" {
			return fileVal
		}
		return def
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "vantage"
	}
	s := &settings{
		Node:      pick("node", f.node, n.Name, host),
		Region:    pick("region", f.region, n.Region, "local"),
		Gossip:    pick("gossip", f.gossip, n.Gossip, "0.0.0.0:7946"),
		Advertise: pick("advertise", f.advertise, n.Advertise, ""),
		HTTP:      pick("http", f.http, n.HTTP, ":8080"),
		Data:      pick("data", f.data, n.Data, "./data"),
		LogFormat: pick("log-format", f.logFormat, n.LogFormat, "text"),
		LogLevel:  pick("log-level", f.logLevel, n.LogLevel, "info"),
	}
	s.InsecureGossip = n.InsecureGossip || f.insecureGossip
	s.DebugAddr = f.debugAddr
	s.APIToken = cfg.StatusPage.APIToken
	if t := strings.TrimSpace(getenv("VANTAGE_API_TOKEN")); t != "" {
		if len(t) < minAPIToken {
			return nil, fmt.Errorf("VANTAGE_API_TOKEN must be at least %d characters, got %d", minAPIToken, len(t))
		}
		s.APIToken, s.apiTokenFromEnv = t, true
	}
	if f.set["join"] {
		s.Join = splitList(f.join)
	} else {
		s.Join = n.Join
	}
	for _, a := range append([]string{s.Gossip, s.HTTP}, s.Join...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("bad address %q: %w", a, err)
		}
	}
	if s.Advertise != "" {
		if _, _, err := net.SplitHostPort(s.Advertise); err != nil {
			return nil, fmt.Errorf("bad --advertise %q: %w", s.Advertise, err)
		}
	}
	if rs := cfg.Cluster.Regions; len(rs) > 0 && !contains(rs, s.Region) {
		return nil, fmt.Errorf("region %q is not one of cluster.regions %v", s.Region, rs)
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("bad --log-format %q: want text or json", s.LogFormat)
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		return nil, err
	}
	keyFile := pick("gossip-key-file", f.gossipKeyFile, n.GossipKeyFile, "")
	key, oldKeys, err := loadGossipKey(keyFile, getenv("VANTAGE_GOSSIP_KEY"))
	if err != nil {
		return nil, err
	}
	s.GossipKey, s.GossipOldKeys = key, oldKeys
	hasPeers := len(s.Join) > 0 || len(cfg.Cluster.Regions) > 1
	if hasPeers && key == nil && !s.InsecureGossip {
		return nil, errors.New("this node has peers (--join or several cluster.regions) but no gossip key: set VANTAGE_GOSSIP_KEY or --gossip-key-file (or pass --insecure-gossip to run unencrypted)")
	}
	return s, nil
}

// minAPIToken is the shortest write API token accepted (as in the config).
const minAPIToken = 16

// loadGossipKey decodes the keys from a file (when given) or the
// environment: base64 keys separated by commas or white space. The first
// is the key this node sends with; the others are old keys it still
// accepts, for a rotation without downtime (docs/operations.md).
func loadGossipKey(file, env string) ([]byte, [][]byte, error) {
	src, raw := "VANTAGE_GOSSIP_KEY", env
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("read gossip key: %w", err)
		}
		src, raw = file, string(b)
	}
	var keys [][]byte
	for i, f := range strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		key, err := base64.StdEncoding.DecodeString(f)
		if err != nil {
			return nil, nil, fmt.Errorf("gossip key %d from %s: not base64: %w", i+1, src, err)
		}
		switch len(key) {
		case 16, 24, 32:
		default:
			return nil, nil, fmt.Errorf("gossip key %d from %s: %d bytes, want 16, 24 or 32 (try: head -c 32 /dev/urandom | base64)", i+1, src, len(key))
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, nil, nil
	}
	return keys[0], keys[1:], nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	l, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs, f := newRunFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if f.config == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: vantage run --config FILE [flags]")
		return 2
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })

	cfg, err := config.Load(f.config)
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	s, err := resolveSettings(f, cfg, os.Getenv)
	if err != nil {
		fmt.Fprintf(stderr, "vantage run: %v\n", err)
		return 2
	}
	log := newLogger(stderr, s.LogFormat, s.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runNode(ctx, cfg, s, log); err != nil {
		log.Error("vantage run failed", "err", err)
		return 1
	}
	return 0
}

// runNode runs a node until ctx is cancelled, then shuts it down cleanly.
func runNode(ctx context.Context, cfg *config.Config, s *settings, log *slog.Logger) error {
	profileDefault(s.DebugAddr)
	if err := os.MkdirAll(s.Data, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	dbPath := filepath.Join(s.Data, "vantage.db")
	v, _ := buildVersion()
	gossip := &cluster.Config{
		Name: s.Node, Region: s.Region, Version: v, Bind: s.Gossip, Advertise: s.Advertise, Join: s.Join,
		Profile: cfg.Cluster.Gossip, Key: s.GossipKey, OldKeys: s.GossipOldKeys, Logger: log,
	}
	if gossip.Key == nil {
		if s.InsecureGossip {
			gossip.Insecure = true
			log.Warn("gossip is unencrypted and unauthenticated (--insecure-gossip)")
		} else {
			gossip.Key = node.RandomKey() // no peers and no key: nobody can join
		}
	}
	n, err := node.New(ctx, node.Options{Config: cfg, Name: s.Node, Region: s.Region, Version: v, DBPath: dbPath,
		OutboxPath: filepath.Join(s.Data, "outbox.db"), Logger: log, Gossip: gossip, APIToken: nodeToken(s)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.HTTP)
	if err != nil {
		n.Close()
		return fmt.Errorf("listen http: %w", err)
	}
	// Read, write and idle timeouts and a cap on connections: the page is
	// public (statuspage.DefaultHTTPOptions).
	httpOpts := statuspage.DefaultHTTPOptions()
	ln = statuspage.LimitListener(ln, httpOpts.MaxConns)
	srv := statuspage.NewHTTPServer(n.Handler(), httpOpts, log)
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()
	if s.DebugAddr != "" {
		dbg, err := startDebugServer(s.DebugAddr)
		if err != nil {
			_ = srv.Close()
			n.Close()
			return err
		}
		defer dbg.Close()
		log.Info("profiling enabled", "addr", s.DebugAddr)
	}
	if err := n.Start(); err != nil {
		_ = srv.Close()
		n.Close()
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go n.Watch(ctx, cfg.Path, hup) // SIGHUP and file changes
	log.Info("vantage started", "version", v, "node", s.Node, "region", s.Region, "config", cfg.Path,
		"checks", len(cfg.Checks), "notifiers", len(cfg.Notifiers), "http", ln.Addr().String(),
		"gossip", n.GossipAddr(), "join", strings.Join(s.Join, ","), "db", dbPath)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", "signal")
	case err := <-httpErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	shCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := n.Close(); err != nil && runErr == nil {
		runErr = err
	}
	log.Info("stopped")
	return runErr
}

// nodeToken is the API token the node is given: the environment's, which
// stays over the file's on reload; without one the node follows the file's
// statuspage.api_token, reloads included.
func nodeToken(s *settings) string {
	if s.apiTokenFromEnv {
		return s.APIToken
	}
	return ""
}
