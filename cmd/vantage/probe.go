package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

const probeUsage = "usage: vantage probe URL|HOST:PORT|HOST [--type http|tcp|icmp|dns] [--timeout 5s] [--record A] [--server HOST:PORT] [--ip 4|6] [--json] [--addr URL]"

// Exit codes of vantage probe beyond 0 (the verdict is up), 1 (the node
// could not be reached or refused) and 2 (bad flags).
const (
	exitProbeDown    = 3
	exitProbeUnknown = 4
)

// cmdProbe runs `vantage probe`: a node asks one node of every region to
// probe the target once, now (POST /api/v1/probe), and prints one line
// per region and the verdict the quorum rules would give.
func cmdProbe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of a node's HTTP interface")
	typ := fs.String("type", "", "http, tcp, icmp or dns (default: a URL is http, HOST:PORT tcp, a host icmp)")
	timeout := fs.Duration("timeout", 5*time.Second, "each region's probe timeout (at most 30s)")
	record := fs.String("record", "", "dns: A (default), AAAA, CNAME, MX, TXT, NS or SOA")
	server := fs.String("server", "", "dns: the name server HOST:PORT (default: each node's resolver)")
	ip := fs.String("ip", "", "4 or 6: the address family (default any)")
	asJSON := fs.Bool("json", false, "print the node's JSON answer")
	// The target may come before or after the flags.
	var target string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if target != "" {
			fmt.Fprintln(stderr, probeUsage)
			return 2
		}
		target, args = args[0], args[1:]
	}
	if target == "" {
		fmt.Fprintln(stderr, probeUsage)
		return 2
	}
	token, ok := apiToken(stderr, "probe")
	if !ok {
		return 2
	}
	req := statuspage.ProbeRequest{Target: target, Type: *typ, Timeout: timeout.String(), Record: *record, Server: *server, IP: *ip}
	body, _ := json.Marshal(req)
	start := time.Now()
	b, code := apiCall(stderr, "probe", *addr, http.MethodPost, "/api/v1/probe", body, token, *timeout+30*time.Second)
	if code != 0 {
		return code
	}
	var ans statuspage.ProbeAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		fmt.Fprintf(stderr, "vantage probe: decode the node's answer: %v\n", err)
		return 1
	}
	if *asJSON {
		stdout.Write(b)
	} else {
		printProbe(stdout, &ans, time.Since(start))
	}
	switch ans.Verdict {
	case "up":
		return 0
	case "down":
		return exitProbeDown
	}
	return exitProbeUnknown
}

func printProbe(w io.Writer, a *statuspage.ProbeAnswer, wall time.Duration) {
	fmt.Fprintf(w, "%s %s from %d regions (timeout %s), answered in %s\n\n", a.Type, a.Target, len(a.Regions),
		time.Duration(a.TimeoutMS)*time.Millisecond, wall.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tNODE\tSTATE\tLATENCY\tDNS\tCONNECT\tTLS\tFIRST BYTE\tSTATUS\tCODE\tADDRESS\tDETAIL")
	for _, r := range a.Regions {
		detail := r.Note
		if detail == "" && r.State == "down" {
			detail = r.Message
		}
		if len(detail) > 100 {
			detail = detail[:97] + "..."
		}
		status := "-"
		if r.StatusCode > 0 {
			status = fmt.Sprint(r.StatusCode)
		} else if r.DNSRcode != "" {
			status = r.DNSRcode
		}
		if r.State == "no_answer" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t%s\n", r.Region, dash(r.Node), "no answer", detail)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Region, r.Node, r.State, msStr(r.LatencyMS),
			msStr(r.DNSMS), msStr(r.ConnectMS), msStr(r.TLSMS), msStr(r.FirstByteMS), status, dash(r.Code), dash(r.RemoteAddr), detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nverdict: %s (down: %s; up: %s; no answer: %s; quorum %d of %d regions)\n", a.Verdict,
		listOrNone(a.Down), listOrNone(a.Up), listOrNone(a.NoAnswer), a.Quorum, len(a.Regions))
}

func msStr(ms float64) string {
	if ms <= 0 {
		return "-"
	}
	if ms < 10 {
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
