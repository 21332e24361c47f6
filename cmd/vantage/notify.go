package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/vantage-dev/vantage/config"
	"github.com/vantage-dev/vantage/notifier"
)

func cmdNotify(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: vantage notify test --config FILE --notifier NAME")
		return 2
	}
	fs := flag.NewFlagSet("notify test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (required)")
	name := fs.String("notifier", "", "notifier to test (required)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the provider")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *path == "" || *name == "" {
		fmt.Fprintln(stderr, "usage: vantage notify test --config FILE --notifier NAME")
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
	ev := notifier.Event{
		Action: notifier.ActionTest, IncidentID: fmt.Sprintf("test-%d", now.Unix()), Check: "vantage-test",
		Target: "this is a test notification from vantage", StartedAt: now, Severity: "info",
		StatusPageURL: cfg.StatusPage.URL,
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rcpt, err := p.Send(ctx, ev)
	if err != nil {
		fmt.Fprintf(stderr, "not delivered to %s (%s): %v\n", nc.Name, nc.Type, err)
		return 1
	}
	fmt.Fprintf(stdout, "delivered to %s (%s): %s\n", nc.Name, nc.Type, rcpt)
	return 0
}
