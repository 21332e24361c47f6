package statuspage

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vantage-dev/vantage/config"
)

// The page speaks English or Korean (Site.Locale) and shows times in the
// page's time zone (Site.Timezone). The view (view.go) is built in English;
// what people read is translated when it is rendered: the templates call
// tr on every fixed string, and the few sentences built from parts
// (incidents, durations, dates) are built here for the locale. English is
// the key of every translation, so a string without one reads in English.

// Locales.
const (
	localeEN = "en"
	localeKO = "ko"
)

// locale renders for one language and time zone. Immutable.
type locale struct {
	code  string // en or ko
	zone  string // IANA name; "UTC" by default
	asked string // the zone the site named (zone unless unknown)
	loc   *time.Location
	msgs  map[string]string // English → this language; nil for English
	tmpl  *tmplSet
}

var (
	locales    sync.Map // "code|zone" → *locale
	lastLocale atomic.Pointer[locale]
)

// localeOf returns the locale of a site (cached): its language, default
// English, and its time zone, default UTC (also for an unknown name).
func localeOf(s Site) *locale {
	code, zone := s.Locale, s.Timezone
	if code != localeKO {
		code = localeEN
	}
	if zone == "" {
		zone = "UTC"
	}
	if l := lastLocale.Load(); l != nil && l.code == code && l.asked == zone {
		return l // the usual case: one page, one locale
	}
	key := code + "|" + zone
	if l, ok := locales.Load(key); ok {
		lastLocale.Store(l.(*locale))
		return l.(*locale)
	}
	asked := zone
	loc, err := config.LoadLocation(zone)
	if err != nil {
		zone, loc = "UTC", time.UTC
	}
	l := &locale{code: code, zone: zone, asked: asked, loc: loc}
	if code == localeKO {
		l.msgs = koMessages
	}
	l.tmpl = parseTemplates(l)
	actual, _ := locales.LoadOrStore(key, l)
	lastLocale.Store(actual.(*locale))
	return actual.(*locale)
}

// t translates s, then formats it with args if there are any.
func (l *locale) t(s string, args ...any) string {
	if m, ok := l.msgs[s]; ok {
		s = m
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

func (l *locale) ko() bool { return l.code == localeKO }

// in is t in the page's time zone.
func (l *locale) in(t time.Time) time.Time { return t.In(l.loc) }

// when is a moment as the page shows it: "2 Jan 2006 15:04 UTC", or in
// Korean "2006년 1월 2일 15:04 KST", in the page's time zone.
func (l *locale) when(t time.Time) string {
	if t.IsZero() {
		return l.t("never")
	}
	t = l.in(t)
	if l.ko() {
		return t.Format("2006년 1월 2일 15:04 ") + zoneName(t)
	}
	return t.Format("2 Jan 2006 15:04 ") + zoneName(t)
}

// stamp is a moment in the feed: "2006-01-02 15:04 UTC", or as when in
// Korean.
func (l *locale) stamp(t time.Time) string {
	if l.ko() {
		return l.when(t)
	}
	t = l.in(t)
	return t.Format("2006-01-02 15:04 ") + zoneName(t)
}

// zoneName is t's zone abbreviation, or its offset when the zone has no
// abbreviation ("+0530").
func zoneName(t time.Time) string {
	name, off := t.Zone()
	if name != "" && (name[0] < '0' || name[0] > '9') && name[0] != '+' && name[0] != '-' {
		return name
	}
	if off == 0 {
		return "UTC"
	}
	return t.Format("-0700")
}

// clock is a time of day in the page's time zone: "15:04:05".
func (l *locale) clock(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return l.in(t).Format("15:04:05")
}

// date is a calendar day (the bar's and the daily table's days, which
// are UTC days): "2006-01-02", or "2006년 1월 2일".
func (l *locale) date(day time.Time) string {
	day = day.UTC()
	if l.ko() {
		return day.Format("2006년 1월 2일")
	}
	return day.Format("2006-01-02")
}

// dur is a duration in words: 45s, 12m, 3h 5m, 2d 4h; in Korean 45초,
// 12분, 3시간 5분, 2일 4시간.
func (l *locale) dur(d time.Duration) string {
	d = max(d, 0)
	s, m, h := "s", "m", "h"
	dd := "d"
	sep := " "
	if l.ko() {
		s, m, h, dd = "초", "분", "시간", "일"
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + s
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + m
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + h + sep + strconv.Itoa(int(d.Minutes())%60) + m
	}
	return strconv.Itoa(int(d.Hours())/24) + dd + sep + strconv.Itoa(int(d.Hours())%24) + h
}

// pct is an uptime fraction as text, translated ("no data").
func (l *locale) pct(u float64) string { return l.t(pct(u)) }

// dayText is a day of the bar in words: "99.95% uptime" or "no data".
func (l *locale) dayText(d dayView) string {
	if d.Class == "none" || d.key < 0 {
		return l.t("no data")
	}
	return l.t("%s uptime", pctText(d.key))
}

// dayLabel is a day cell's accessible text: the date, the uptime, and the
// day's incidents.
func (l *locale) dayLabel(d dayView) string {
	var b strings.Builder
	b.WriteString(l.date(d.day))
	b.WriteString(": ")
	b.WriteString(l.dayText(d))
	for _, inc := range d.Incidents {
		b.WriteString("; ")
		b.WriteString(l.t("incident: %s", inc))
	}
	return b.String()
}

// impact is a manual incident's impact in words.
func (l *locale) impact(i string) string {
	switch i {
	case "critical":
		return l.t("Critical impact")
	case "major":
		return l.t("Major impact")
	case "minor":
		return l.t("Minor impact")
	}
	return l.t("No impact")
}

// stateText is a display state in words.
func (l *locale) stateText(s string) string { return l.t(stateText[s]) }

// statusText is an incident status in words.
func (l *locale) statusText(s string) string {
	if t := statusText[s]; t != "" {
		return l.t(t)
	}
	return s
}

// staleReason says why a node's view may be stale.
func (l *locale) staleReason(v *view) string {
	if !v.Stale {
		return ""
	}
	q := max(v.Status.Cluster.Quorum, 1)
	eligible := 0
	for _, ri := range v.Status.Cluster.Regions {
		if ri.Eligible {
			eligible++
		}
	}
	return l.t("This node sees %d of the %d regions needed to decide; its view may be stale.", eligible, q)
}

// zoneText names the page's time zone for the footer: "UTC", or
// "Asia/Seoul (KST)".
func (l *locale) zoneText(at time.Time) string {
	if l.zone == "UTC" {
		return "UTC"
	}
	if z := zoneName(l.in(at)); z != l.zone {
		return l.zone + " (" + z + ")"
	}
	return l.zone
}

// funcs are the template functions of the locale.
func (l *locale) funcs() template.FuncMap {
	return template.FuncMap{
		"rfc": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return ""
				}
				return v.UTC().Format(time.RFC3339)
			case *time.Time:
				if v == nil {
					return ""
				}
				return v.UTC().Format(time.RFC3339)
			}
			return ""
		},
		"when": func(t any) string {
			switch x := t.(type) {
			case time.Time:
				return l.when(x)
			case *time.Time:
				if x != nil {
					return l.when(*x)
				}
			}
			return ""
		},
		"clock": l.clock,
		"ms": func(v float64) string {
			if v <= 0 {
				return "–"
			}
			return fmtMS(v)
		},
		"tr":       l.t,
		"stext":    l.stateText,
		"istatus":  l.statusText,
		"impact":   l.impact,
		"daylabel": l.dayLabel,
		"errtext":  l.errText,
		"stale":    l.staleReason,
		"zone":     l.zoneText,
		"ko":       l.ko,
		"lang":     func() string { return l.code },
		"join":     strings.Join,
		"mod":      func(a, b int) int { return a % b },
		"count":    count,
	}
}

// count is a number with thousands separators: 10,000.
func count(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// koMessages are the Korean translations, by English text.
var koMessages = map[string]string{
	// banner
	"All systems operational":                     "모든 시스템 정상 작동 중",
	"Degraded performance":                        "성능 저하",
	"Partial outage":                              "부분 장애",
	"Major outage":                                "대규모 장애",
	"Under maintenance":                           "점검 중",
	"Monitoring degraded: this view may be stale": "모니터링 저하: 이 화면은 최신이 아닐 수 있습니다",
	"Monitoring degraded.":                        "모니터링 저하.",
	"This node sees %d of the %d regions needed to decide; its view may be stale.": "이 노드는 판정에 필요한 리전 %[2]d개 중 %[1]d개만 볼 수 있어 화면이 최신이 아닐 수 있습니다.",
	" Live.": " 실시간.",
	"never":  "없음",
	// Statuspage descriptions
	"All Systems Operational":   "모든 시스템 정상 작동 중",
	"Minor Service Outage":      "일부 서비스 장애",
	"Partial System Outage":     "부분 시스템 장애",
	"Major System Outage":       "대규모 시스템 장애",
	"Service Under Maintenance": "서비스 점검 중",
	"Monitoring Degraded":       "모니터링 저하",
	// states and votes
	"Operational": "정상",
	"Degraded":    "성능 저하",
	"Down":        "장애",
	"Unknown":     "알 수 없음",
	"Maintenance": "점검",
	"Up":          "정상",
	"Abstains":    "기권",
	"No vote":     "투표 없음",
	// incident statuses
	"Investigating":   "조사 중",
	"Identified":      "원인 파악",
	"Monitoring":      "모니터링 중",
	"Resolved":        "해결됨",
	"Critical impact": "영향: 심각",
	"Major impact":    "영향: 큼",
	"Minor impact":    "영향: 작음",
	"No impact":       "영향 없음",
	// uptime
	"24h":          "24시간",
	"7d":           "7일",
	"30d":          "30일",
	"90d":          "90일",
	"no data":      "데이터 없음",
	"%s uptime":    "가동률 %s",
	"incident: %s": "장애: %s",
	"90 days ago":  "90일 전",
	"today":        "오늘",
	"Daily uptime, last 90 days, oldest first": "일별 가동률, 최근 90일, 오래된 날부터",
	// index page
	"Skip to content":           "본문으로 건너뛰기",
	"Active incidents":          "진행 중인 장애",
	"In progress":               "진행 중",
	"Scheduled":                 "예정",
	"Scheduled maintenance":     "예정된 점검",
	"Components":                "구성 요소",
	"No checks are configured.": "설정된 검사가 없습니다.",
	"Past incidents":            "지난 장애",
	"No incidents reported.":    "보고된 장애가 없습니다.",
	"Regions now":               "현재 리전별 상태",
	"Current view per region":   "리전별 현재 상태",
	"Region":                    "리전",
	"Vote":                      "판정",
	"Latency":                   "지연 시간",
	"Checked":                   "확인 시각",
	"(not voting)":              "(투표 제외)",
	"Updates, newest first":     "업데이트, 최신순",
	"started":                   "시작",
	"resolved":                  "해결",
	"Incident feed (Atom)":      "장애 피드 (Atom)",
	"Times in %s.":              "시간대: %s.",
	"Links":                     "링크",
	"%s components, each with its state and its uptime over the last 24 hours; follow a name for its 90-day history.": "구성 요소 %s개의 상태와 최근 24시간 가동률입니다. 이름을 누르면 90일 기록을 볼 수 있습니다.",
	"Live status, uptime and incidents of %s.":             "%s의 실시간 상태, 가동률과 장애 기록입니다.",
	"Status, uptime and latency of %s, from every region.": "%s의 리전별 상태, 가동률과 지연 시간입니다.",
	// check page
	"← All components":                  "← 전체 구성 요소",
	"%s since":                          "%s 이후",
	"Certificate expires":               "인증서 만료",
	"Latency, last 24 hours":            "지연 시간, 최근 24시간",
	"Latency per region, last 24 hours": "리전별 지연 시간, 최근 24시간",
	"Checks":                            "검사 수",
	"Uptime":                            "가동률",
	"Avg":                               "평균",
	"Max":                               "최대",
	"No results in the last 24 hours.":  "최근 24시간 동안 결과가 없습니다.",
	"Daily history":                     "일별 기록",
	"Last 30 days, all regions (newest first)": "최근 30일, 전체 리전 (최신순)",
	"Day":                               "날짜",
	"Download the last 24 hours as CSV": "최근 24시간 기록 CSV 내려받기",
	"Incidents":                         "장애",
	"Incident":                          "장애",
	"Average latency per region over the last 24 hours, in milliseconds": "최근 24시간 리전별 평균 지연 시간 (밀리초)",
	// incidents
	"%s is down": "%s 장애",
	"%s is not responding as expected; we are investigating.": "%s이(가) 정상적으로 응답하지 않아 조사 중입니다.",
	"%s is operational again.":                                "%s이(가) 다시 정상 작동합니다.",
	"%s incidents":                                            "%s 장애 기록",
	// error phrases (notifier.Describe)
	"DNS lookup failed":               "DNS 조회 실패",
	"DNS: no such name":               "DNS: 존재하지 않는 이름",
	"DNS: server failure":             "DNS: 서버 오류",
	"DNS: query refused":              "DNS: 질의 거부",
	"DNS: no answer in time":          "DNS: 응답 시간 초과",
	"DNS: unexpected answer code":     "DNS: 예상과 다른 응답 코드",
	"DNS: unexpected answer":          "DNS: 예상과 다른 응답",
	"connection refused":              "연결 거부",
	"connection timed out":            "연결 시간 초과",
	"connection reset":                "연결 재설정",
	"network unreachable":             "네트워크에 연결할 수 없음",
	"connection failed":               "연결 실패",
	"TLS error":                       "TLS 오류",
	"certificate expires soon":        "인증서 만료 임박",
	"certificate expired":             "인증서 만료",
	"unexpected HTTP status":          "예상과 다른 HTTP 상태",
	"unexpected response":             "예상과 다른 응답",
	"too slow":                        "응답 지연",
	"no answer in time":               "응답 시간 초과",
	"packet loss":                     "패킷 손실",
	"ping not permitted on the probe": "프로브에서 ping을 사용할 수 없음",
	"protocol error":                  "프로토콜 오류",
	"check misconfigured":             "검사 설정 오류",
	"probe failure":                   "프로브 오류",
	"no heartbeat":                    "하트비트 없음",
	"failing":                         "실패",
}
