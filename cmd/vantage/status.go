package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vantage-dev/vantage/statuspage"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "base URL of a node's HTTP interface (VANTAGE_API_TOKEN, when set, shows the operator view)")
	timeout := fs.Duration("timeout", 5*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	base := strings.TrimSuffix(*addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	client := &http.Client{Timeout: *timeout}
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/status", nil)
	if err != nil {
		fmt.Fprintf(stderr, "vantage status: %v\n", err)
		return 1
	}
	if tok := strings.TrimSpace(os.Getenv("VANTAGE_API_TOKEN")); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok) // the operator view: targets, messages, addresses
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "vantage status: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "vantage status: %s answered %s\n", base, resp.Status)
		return 1
	}
	var st statuspage.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		fmt.Fprintf(stderr, "vantage status: decode %s/api/v1/status: %v\n", base, err)
		return 1
	}
	printStatus(stdout, &st)
	return 0
}

func printStatus(w io.Writer, st *statuspage.Status) {
	fmt.Fprintf(w, "node %s (region %s), quorum %d, generated %s\n\n", st.Node.Name, st.Node.Region,
		st.Cluster.Quorum, st.GeneratedAt.Format(time.RFC3339))
	regions := make([]string, 0, len(st.Cluster.Regions))
	for r := range st.Cluster.Regions {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tREGION\tSTATE")
	for _, m := range st.Cluster.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Name, m.Region, m.State)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "REGION\tELIGIBLE\tREASON")
	for _, r := range regions {
		ri := st.Cluster.Regions[r]
		fmt.Fprintf(tw, "%s\t%v\t%s\n", r, ri.Eligible, ri.Reason)
	}
	fmt.Fprintln(tw)
	header := "CHECK\tSTATE\tSINCE\tINCIDENT"
	for _, r := range regions {
		header += "\t" + strings.ToUpper(r)
	}
	fmt.Fprintln(tw, header)
	for _, c := range st.Checks {
		since := "-"
		if !c.Since.IsZero() {
			since = time.Since(c.Since).Round(time.Second).String()
		}
		inc := c.IncidentID
		if inc == "" {
			inc = "-"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s", c.Name, c.State, since, inc)
		for _, r := range regions {
			v, ok := c.Regions[r]
			switch {
			case !ok:
				line += "\t-"
			case v.Error != "":
				line += fmt.Sprintf("\t%s %s", v.Vote, v.Error)
			default:
				line += fmt.Sprintf("\t%s %.0fms", v.Vote, v.LatencyMS)
			}
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
