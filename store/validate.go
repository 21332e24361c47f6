package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of operators' writes, enforced by the write API and by every
// node that takes a write from a peer.
const (
	// MaxUpdateBody is the longest update text, in bytes.
	MaxUpdateBody = 10 * 1024
	// MaxTitle is the longest incident title, in characters.
	MaxTitle = 200
	// MaxComponents bounds the checks a manual incident names.
	MaxComponents = 100
	maxWriteID    = 64
)

// CheckText checks a text an operator wrote: not empty, at most maxBytes
// bytes of UTF-8 without control characters other than newline and tab.
func CheckText(field, s string, maxBytes int) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", field)
	case len(s) > maxBytes:
		return fmt.Errorf("%s is %d bytes, at most %d allowed", field, len(s), maxBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return fmt.Errorf("%s contains the control character %U", field, r)
		}
	}
	return nil
}

// CheckTitle checks an incident title: one line of at most MaxTitle
// characters.
func CheckTitle(title string) error {
	if err := CheckText("title", title, 4*MaxTitle); err != nil {
		return err
	}
	if utf8.RuneCountInString(title) > MaxTitle || strings.ContainsAny(title, "\n\t") {
		return fmt.Errorf("title must be one line of at most %d characters", MaxTitle)
	}
	return nil
}

// ValidImpact reports whether s is a manual incident's impact.
func ValidImpact(s string) bool {
	switch s {
	case "none", "minor", "major", "critical":
		return true
	}
	return false
}

func checkID(field, id string) error {
	if id == "" || len(id) > maxWriteID || !utf8.ValidString(id) || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("bad %s %q", field, id)
	}
	return nil
}

// ValidateUpdate checks an incident update as the write API would take it
// (ids and time set).
func ValidateUpdate(u IncidentUpdate) error {
	if err := checkID("update id", u.ID); err != nil {
		return err
	}
	if err := checkID("incident id", u.IncidentID); err != nil {
		return err
	}
	if !ValidUpdateStatus(u.Status) {
		return fmt.Errorf("unknown status %q: want investigating, identified, monitoring or resolved", u.Status)
	}
	if len(u.Author) > 253 {
		return fmt.Errorf("author of %d bytes", len(u.Author))
	}
	if u.CreatedAt.IsZero() {
		return fmt.Errorf("update %s has no time", u.ID)
	}
	return CheckText("body", u.Body, MaxUpdateBody)
}

// ValidateManual checks a manual incident as the write API would open it.
func ValidateManual(i Incident) error {
	if err := checkID("incident id", i.ID); err != nil {
		return err
	}
	if err := CheckTitle(i.Title); err != nil {
		return err
	}
	if i.Impact != "" && !ValidImpact(i.Impact) {
		return fmt.Errorf("unknown impact %q", i.Impact)
	}
	if len(i.Components) > MaxComponents {
		return fmt.Errorf("%d components, at most %d", len(i.Components), MaxComponents)
	}
	for _, c := range i.Components {
		if c == "" || len(c) > 253 {
			return fmt.Errorf("bad component %q", c)
		}
	}
	if len(i.Details) > MaxUpdateBody || len(i.Author) > 253 || i.StartedAt.IsZero() {
		return fmt.Errorf("manual incident %s: details, author or start out of bounds", i.ID)
	}
	return nil
}
