package statuspage

import "github.com/vantage-dev/vantage/config"

// PageFromConfig builds the Page of a configuration: its statuspage title,
// description and URL, each check's display name, description and group
// (in file order), and the maintenance windows.
func PageFromConfig(cfg *config.Config) Page {
	p := Page{Title: cfg.StatusPage.Title, Description: cfg.StatusPage.Description, URL: trimSlash(cfg.StatusPage.URL)}
	for _, c := range cfg.Checks {
		p.Checks = append(p.Checks, PageCheck{Name: c.Name, DisplayName: c.DisplayName, Description: c.Description, Group: c.Group})
	}
	for _, m := range cfg.Maintenance {
		p.Maintenance = append(p.Maintenance, MaintenanceWindow{Title: m.Title, Checks: append([]string(nil), m.Checks...), Start: m.Start, End: m.End})
	}
	return p
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
