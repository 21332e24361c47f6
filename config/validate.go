package config

import (
	"errors"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// nameRE is what check and notifier names may contain.
var nameRE = regexp.MustCompile(`^[a-z0-9._-]+$`)

// validHost reports whether h is an IP address or a plausible DNS name.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// hostPortProblem describes what is wrong with a HOST:PORT address, or
// returns "". A bind address may leave the host empty and use port 0.
func hostPortProblem(s string, bind bool) string {
	h, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be HOST:PORT"
	}
	if h == "" && !bind {
		return "must be HOST:PORT (the host is missing)"
	}
	if h != "" && !validHost(h) {
		return "has an invalid host " + strconv.Quote(h)
	}
	minPort := 1
	if bind {
		minPort = 0
	}
	if n, err := strconv.Atoi(port); err != nil || n < minPort || n > 65535 || strings.HasPrefix(port, "+") {
		return "has an invalid port " + strconv.Quote(port) + " (want " + strconv.Itoa(minPort) + "-65535)"
	}
	return ""
}

// httpURLProblem describes what is wrong with an http or https URL, or
// returns "". The URL itself is not quoted: it may hold a secret.
func httpURLProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "is not a valid URL: " + err.Error()
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "must be an http:// or https:// URL"
	}
	return urlHostProblem(u)
}

func urlHostProblem(u *url.URL) string {
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return "has no host"
	}
	if !validHost(u.Hostname()) {
		return "has an invalid host " + strconv.Quote(u.Hostname())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has an invalid port " + strconv.Quote(p)
		}
	}
	return ""
}

// canaryProblem checks tcp://HOST:PORT or an http(s) URL.
func canaryProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https") {
		return "must be tcp://HOST:PORT or an http:// or https:// URL"
	}
	if u.Scheme != "tcp" {
		return httpURLProblem(s)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "must be tcp://HOST:PORT"
	}
	if pr := hostPortProblem(u.Host, false); pr != "" {
		return pr
	}
	return ""
}

// isToken reports whether s is an HTTP token (RFC 9110), as methods and
// header names must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// oneOf reports whether s is one of the choices.
func oneOf(s string, choices ...string) bool {
	for _, c := range choices {
		if s == c {
			return true
		}
	}
	return false
}

// choiceList formats choices as "a, b or c".
func choiceList(choices ...string) string {
	switch len(choices) {
	case 0:
		return ""
	case 1:
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}
