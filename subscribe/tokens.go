// Package subscribe is the status page's subscriptions: visitors' email
// addresses confirmed through a signed link, operators' webhooks, and the
// designated sender's fan-out of every incident's start, operators'
// updates and resolution to every subscriber, once each across the
// cluster (the mesh's subscribers sent log and claims, the node's durable
// outbox).
//
// Links are signed with an HMAC-SHA256 key every node shares (Secret): a
// confirmation link signs the address and its expiry, so nothing is stored
// before the visitor confirms; an unsubscribe link signs the subscriber's
// id and does not expire (RFC 8058 wants it to keep working).
package subscribe

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrBadLink is a confirmation or unsubscribe link that is forged, torn
// or expired.
var ErrBadLink = errors.New("the link is invalid or has expired")

// Secret derives the links' signing key. The config's
// statuspage.subscriptions.secret when set; else the gossip key (every
// node of a cluster has it); else the API token. "" when none is set:
// subscriptions by email cannot be offered.
func Secret(configured string, gossipKey []byte, apiToken string) []byte {
	var material []byte
	switch {
	case configured != "":
		material = []byte("secret\x00" + configured)
	case len(gossipKey) > 0:
		material = append([]byte("gossip\x00"), gossipKey...)
	case apiToken != "":
		material = []byte("token\x00" + apiToken)
	default:
		return nil
	}
	m := hmac.New(sha256.New, []byte("vantage subscription links v1"))
	m.Write(material)
	return m.Sum(nil)
}

// Signer signs and checks links.
type Signer struct {
	Key []byte
}

func (s Signer) sign(parts ...string) string {
	m := hmac.New(sha256.New, s.Key)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func (s Signer) ok(sig string, parts ...string) bool {
	return len(s.Key) > 0 && subtle.ConstantTimeCompare([]byte(sig), []byte(s.sign(parts...))) == 1
}

// ConfirmQuery is the query of a confirmation link of email valid until
// expires: e (the address, base64url), x (the expiry, Unix seconds) and s
// (the signature).
func (s Signer) ConfirmQuery(email string, expires time.Time) url.Values {
	x := strconv.FormatInt(expires.Unix(), 10)
	return url.Values{"e": {base64.RawURLEncoding.EncodeToString([]byte(email))}, "x": {x}, "s": {s.sign("confirm", email, x)}}
}

// Confirm checks a confirmation link's query at now and returns its
// address.
func (s Signer) Confirm(q url.Values, now time.Time) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(q.Get("e"))
	if err != nil || len(raw) == 0 || len(raw) > 512 {
		return "", ErrBadLink
	}
	email, x := string(raw), q.Get("x")
	exp, err := strconv.ParseInt(x, 10, 64)
	if err != nil || !s.ok(q.Get("s"), "confirm", email, x) {
		return "", ErrBadLink
	}
	if now.Unix() > exp {
		return "", ErrBadLink
	}
	return email, nil
}

// DecodeConfirmEmail is the address a confirmation link's query names,
// unchecked (to show it before the visitor confirms).
func DecodeConfirmEmail(q url.Values) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(q.Get("e"))
	if err != nil || len(raw) == 0 || len(raw) > 512 {
		return "", ErrBadLink
	}
	return string(raw), nil
}

// UnsubscribeQuery is the query of subscriber id's unsubscribe link: id
// and s.
func (s Signer) UnsubscribeQuery(id string) url.Values {
	return url.Values{"id": {id}, "s": {s.sign("unsubscribe", id)}}
}

// Unsubscribe checks an unsubscribe link's query and returns its
// subscriber's id.
func (s Signer) Unsubscribe(q url.Values) (string, error) {
	id := q.Get("id")
	if id == "" || len(id) > 64 || !s.ok(q.Get("s"), "unsubscribe", id) {
		return "", ErrBadLink
	}
	return id, nil
}
