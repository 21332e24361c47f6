package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vantage-dev/vantage/report"
)

const reportUsage = "usage: vantage report --from DATE --to DATE [--group G] [--format text|html|csv|json] [--out FILE] [--tz ZONE] [--addr URL]"

// cmdReport runs `vantage report`: a node's SLA report of a period
// (GET /api/v1/reports), printed as a table or written as HTML, CSV or
// JSON. The token comes from VANTAGE_API_TOKEN. Exit 0 on success, 1 when
// the node cannot be reached or refuses, 2 for bad flags.
func cmdReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of a node's HTTP interface")
	from := fs.String("from", "", "start of the period: a date (2026-11-01, midnight in --tz) or an RFC 3339 time (required)")
	to := fs.String("to", "", "end of the period, excluded (required)")
	group := fs.String("group", "", "only the checks of this group")
	format := fs.String("format", "text", "text (a table), html (one self-contained file), csv or json")
	out := fs.String("out", "", "write to this file instead of standard output")
	tz := fs.String("tz", "", "time zone of dates without one (default: the node's statuspage.timezone)")
	timeout := fs.Duration("timeout", 2*time.Minute, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, reportUsage)
		return 2
	}
	if *format != "text" && !report.ValidFormat(*format) {
		fmt.Fprintf(stderr, "vantage report: --format %q: want text, html, csv or json\n", *format)
		return 2
	}
	token, ok := apiToken(stderr, "report")
	if !ok {
		return 2
	}
	q := url.Values{"from": {*from}, "to": {*to}}
	if *group != "" {
		q.Set("group", *group)
	}
	if *tz != "" {
		q.Set("tz", *tz)
	}
	apiFormat := *format
	if apiFormat == "text" {
		apiFormat = report.FormatJSON
	}
	q.Set("format", apiFormat)
	body, code := apiCall(stderr, "report", *addr, http.MethodGet, "/api/v1/reports?"+q.Encode(), nil, token, *timeout)
	if code != 0 {
		return code
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "vantage report: %v\n", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	if *format != "text" {
		if _, err := w.Write(body); err != nil {
			fmt.Fprintf(stderr, "vantage report: %v\n", err)
			return 1
		}
		return 0
	}
	var r report.Report
	if err := json.Unmarshal(body, &r); err != nil {
		fmt.Fprintf(stderr, "vantage report: decode the node's answer: %v\n", err)
		return 1
	}
	printReport(w, &r)
	return 0
}

// apiToken reads VANTAGE_API_TOKEN.
func apiToken(stderr io.Writer, cmd string) (string, bool) {
	t := strings.TrimSpace(os.Getenv("VANTAGE_API_TOKEN"))
	if t == "" {
		fmt.Fprintf(stderr, "vantage %s: set VANTAGE_API_TOKEN to the node's API token (statuspage.api_token)\n", cmd)
		return "", false
	}
	return t, true
}

// apiCall sends one request with the bearer token and returns the body of
// a 2xx answer, or an exit code (1) after printing why.
func apiCall(stderr io.Writer, cmd, addr, method, path string, body []byte, token string, timeout time.Duration) ([]byte, int) {
	base := strings.TrimSuffix(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		fmt.Fprintf(stderr, "vantage %s: %v\n", cmd, err)
		return nil, 1
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "vantage %s: %v\n", cmd, err)
		return nil, 1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	if err != nil {
		fmt.Fprintf(stderr, "vantage %s: read the answer: %v\n", cmd, err)
		return nil, 1
	}
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		fmt.Fprintf(stderr, "vantage %s: %s answered %s: %s\n", cmd, base, resp.Status, msg)
		return nil, 1
	}
	return b, 0
}

func printReport(w io.Writer, r *report.Report) {
	title := r.Title
	if title == "" {
		title = "Uptime report"
	}
	fmt.Fprintf(w, "%s: %s to %s", title, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	if r.Group != "" {
		fmt.Fprintf(w, ", group %s", r.Group)
	}
	if r.Until.Before(r.To) {
		fmt.Fprintf(w, " (figures up to %s)", r.Until.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "uptime: unknown time excluded; with unknown: unknown time counted as not up; maintenance excluded from both")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "CHECK\tGROUP\tUPTIME\tWITH UNKNOWN\tINCIDENTS\tDOWNTIME\tLONGEST\tMTTR\tMTBF"
	for _, reg := range r.Regions {
		head += "\tP95 " + strings.ToUpper(reg)
	}
	fmt.Fprintln(tw, head)
	line := func(name, group string, f *report.Figures) {
		s := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s", name, dash(group), report.Percent(f.Uptime), report.Percent(f.UptimeWithUnknown),
			f.Incidents, report.Duration(f.DowntimeS), report.Duration(f.LongestDowntimeS), optDur(f.MTTRS), optDur(f.MTBFS))
		for _, reg := range r.Regions {
			if l, ok := f.Latency[reg]; ok && l.Results > 0 {
				s += fmt.Sprintf("\t%.0fms", l.P95MS)
			} else {
				s += "\t-"
			}
		}
		fmt.Fprintln(tw, s)
	}
	for i := range r.Checks {
		line(r.Checks[i].Name, r.Checks[i].Group, &r.Checks[i].Figures)
	}
	for i := range r.Groups {
		line("[group]", r.Groups[i].Name, &r.Groups[i].Figures)
	}
	line("[total]", r.Group, &r.Total)
	tw.Flush()
	if len(r.Incidents) == 0 {
		fmt.Fprintln(w, "\nno incidents")
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INCIDENT\tCHECK\tSTARTED\tRESOLVED\tDURATION\tDOWNTIME IN PERIOD")
	for _, inc := range r.Incidents {
		end := "ongoing"
		if inc.End != nil {
			end = inc.End.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.Check, inc.Start.Format(time.RFC3339), end,
			report.Duration(inc.DurationS), report.Duration(inc.DowntimeS))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optDur(f *float64) string {
	if f == nil {
		return "-"
	}
	return report.Duration(*f)
}
