package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vantage-dev/vantage/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file to check (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: vantage validate --config FILE")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		printConfigErrors(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "OK: %d checks, %d notifiers\n", len(cfg.Checks), len(cfg.Notifiers))
	return 0
}

// printConfigErrors prints one line per problem: FILE:LINE:COL: message.
func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintln(w, err)
}
