// Command vantage is a multi-region synthetic uptime checker: one binary for
// probe nodes, config validation, the demo and operator tools.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const usage = `vantage: multi-region synthetic uptime checker

Usage:
  vantage demo [--http ADDR]            three regions on loopback, sample targets, an outage
  vantage run --config FILE [flags]     run one probe node
  vantage validate --config FILE        check a config without running it
  vantage status --addr URL             print a node's view as a table
  vantage report --from DATE --to DATE [--group G] [--format text|html|csv|json]
                                        SLA report of a period from a node
  vantage probe URL|HOST:PORT|HOST [--type http|tcp|icmp|dns]
                                        probe a target once from every region, now
  vantage notify test --config FILE --notifier NAME
                                        send a test notification
  vantage version                       print version information

Run "vantage COMMAND -h" for a command's flags.
`

func main() {
	gcDefault(os.Getenv)
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// gcPercent is the collector's target when GOGC is not set. A node's heap
// is mostly long-lived tables (checks, votes, history, the page), so Go's
// default of 100, a heap up to twice the live data, costs memory for
// little; 30 trades a little CPU for it (docs/performance.md, "Memory",
// measures 50 against 100, 40 against 50 and 30 against 40 side by side).
const gcPercent = 30

// gcDefault sets the collector's target to gcPercent unless GOGC is set
// (GOGC=100 restores Go's default), and returns the target in effect.
func gcDefault(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		old := debug.SetGCPercent(100)
		debug.SetGCPercent(old)
		return old
	}
	debug.SetGCPercent(gcPercent)
	return gcPercent
}

// profileDefault turns Go's sampling of allocations off unless heap
// profiles can be read, that is unless --debug-addr is given: otherwise
// the sampler's hash table and stacks (BuckHashSys) held about 1 MB of a
// 1,000-check node's RSS for nobody. It returns the rate in effect.
func profileDefault(debugAddr string) int {
	if debugAddr == "" {
		runtime.MemProfileRate = 0
	}
	return runtime.MemProfileRate
}

func runMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	case "probe":
		return cmdProbe(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "notify":
		return cmdNotify(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vantage: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

// buildVersion returns the version and commit, from -ldflags or, failing
// that, from the module build information.
func buildVersion() (string, string) {
	v, c := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if c == "" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

func versionString() string {
	v, c := buildVersion()
	return fmt.Sprintf("vantage %s (commit %s, %s %s/%s)", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
