package subscribe

import "fmt"

// Messages speak the page's language (statuspage.locale): English is the
// key of every translation, as on the page (statuspage/i18n.go).
type lang string

func (l lang) t(s string, args ...any) string {
	if l == "ko" {
		if k, ok := koMessages[s]; ok {
			s = k
		}
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

var koMessages = map[string]string{
	"Confirm your subscription to %s": "%s 구독 확인",
	"Someone, probably you, asked to be told of %s's incidents by mail at this address.": "누군가(아마도 본인)가 이 주소로 %s의 장애 소식을 메일로 받겠다고 요청했습니다.",
	"To confirm, open this link within %s:":                                              "확인하려면 %s 안에 다음 링크를 여세요:",
	"If you did not ask, ignore this mail: nothing happens.":                             "요청하지 않으셨다면 이 메일을 무시하세요. 아무 일도 일어나지 않습니다.",
	"%d hours":        "%d시간",
	"%d minutes":      "%d분",
	"Incident: %s":    "장애 발생: %s",
	"Update: %s (%s)": "업데이트: %s (%s)",
	"Resolved: %s":    "해결됨: %s",
	"Started: %s":     "시작: %s",
	"Posted: %s":      "게시: %s",
	"Resolved at: %s": "해결: %s",
	"Details: %s":     "자세히: %s",
	"Unsubscribe: %s": "구독 해지: %s",
	"investigating":   "조사 중",
	"identified":      "원인 확인",
	"monitoring":      "모니터링 중",
	"resolved":        "해결됨",
	"You get this mail because you subscribed to %s's incidents.": "%s의 장애 소식을 구독하셨기 때문에 이 메일을 받으셨습니다.",
}
