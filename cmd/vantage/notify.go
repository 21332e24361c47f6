package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

const notifyUsage = "usage: vantage notify test --config FILE --notifier NAME [--resolve-after DURATION] [--timeout DURATION]"

// cmdNotify runs `vantage notify test`: a test trigger through one
// notifier and, after the provider's answer, its resolve, so that a test
// leaves no alert open. Exit 0 when both were delivered, 1 when either was
// not, 2 for bad flags or config.
func cmdNotify(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, notifyUsage)
		return 2
	}
	fs := flag.NewFlagSet("notify test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (required)")
	name := fs.String("notifier", "", "notifier to test (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the provider, for each of the two sends")
	resolveAfter := fs.Duration("resolve-after", 0, "wait this long between the trigger and its resolve (Ctrl-C resolves at once)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" || *name == "" || fs.NArg() > 0 || *timeout <= 0 || *resolveAfter < 0 {
		fmt.Fprintln(stderr, notifyUsage)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	nc := cfg.NotifierByName(*name)
	if nc == nil {
		fmt.Fprintf(stderr, "vantage notify test: no notifier %q in %s\n", *name, *path)
		return 2
	}
	p, err := notifier.New(*nc, notifier.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "vantage notify test: %v\n", err)
		return 2
	}
	now := time.Now().UTC()
	var suffix [3]byte
	rand.Read(suffix[:])
	trigger := notifier.Event{
		Action: notifier.ActionTest, IncidentID: fmt.Sprintf("test-%d-%s", now.Unix(), hex.EncodeToString(suffix[:])),
		Check: "vantage-test", Target: "this is a test notification from vantage", StartedAt: now, At: now,
		Severity: "info", StatusPageURL: cfg.StatusPage.URL, Test: true,
	}
	send := func(what string, e notifier.Event) bool {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		rcpt, err := p.Send(ctx, e)
		if err != nil {
			fmt.Fprintf(stderr, "test %s not delivered to %s (%s): %v\n", what, nc.Name, nc.Type, err)
			return false
		}
		fmt.Fprintf(stdout, "test %s delivered to %s (%s): %s\n", what, nc.Name, nc.Type, rcpt)
		return true
	}
	if !send("trigger", trigger) {
		return 1
	}
	if *resolveAfter > 0 {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		t := time.NewTimer(*resolveAfter)
		select {
		case <-t.C:
		case <-sig:
			fmt.Fprintln(stderr, "interrupted: resolving now")
		}
		t.Stop()
		signal.Stop(sig)
	}
	resolve := trigger
	end := time.Now().UTC()
	resolve.Action, resolve.ResolvedAt, resolve.At = notifier.ActionResolve, &end, end
	if !send("resolve", resolve) {
		fmt.Fprintf(stderr, "the test alert %s may still be open in %s\n", trigger.IncidentID, nc.Name)
		return 1
	}
	return 0
}
