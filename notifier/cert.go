package notifier

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"time"
)

// CertInfo describes the certificate of a certificate warning (KindCert).
type CertInfo struct {
	Subject  string    `json:"subject"`             // the leaf's subject, e.g. "CN=checkout.example.com"
	Issuer   string    `json:"issuer,omitempty"`    // its issuer
	Serial   string    `json:"serial"`              // serial number, upper-case hex (CertSerial)
	NotAfter time.Time `json:"not_after"`           // expiry
	DNSNames []string  `json:"dns_names,omitempty"` // subject alternative names
}

// NewCertInfo describes c.
func NewCertInfo(c *x509.Certificate) CertInfo {
	return CertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: CertSerial(c),
		NotAfter: c.NotAfter.UTC(), DNSNames: c.DNSNames}
}

// CertSerial is c's serial number in upper-case hex, without separators:
// what CertID and the warnings show.
func CertSerial(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return strings.ToUpper(c.SerialNumber.Text(16))
}

// maxIDLen is the longest incident id the cluster's sent log takes.
const maxIDLen = 64

// CertID is the id of the warning about the certificate with serial number
// serial served to check: "cert:CHECK:SERIAL", the PagerDuty dedup_key and
// Opsgenie alias of the warning. The same certificate gives the same id on
// every node, so each certificate is warned about once. An id longer than
// 64 bytes (a long check name or serial) is "cert:" and a hash of both;
// the PagerDuty dedup_key and Opsgenie alias stay "cert:CHECK:SERIAL"
// (CertKey).
func CertID(check, serial string) string {
	key := CertKey(check, serial)
	if len(key) <= maxIDLen {
		return key
	}
	h := sha256.Sum256([]byte(key))
	return KindCert + ":" + hex.EncodeToString(h[:16])
}

// CertKey is "cert:CHECK:SERIAL".
func CertKey(check, serial string) string { return KindCert + ":" + check + ":" + serial }

// alertKey is the key a provider that keeps alerts (PagerDuty's dedup_key,
// Opsgenie's alias) knows e's alert by: the incident id, or for a
// certificate warning "cert:CHECK:SERIAL".
func alertKey(e Event) string {
	if e.Kind == KindCert && e.Cert != nil && e.Check != "" && e.Cert.Serial != "" {
		return CertKey(e.Check, e.Cert.Serial)
	}
	return e.IncidentID
}
