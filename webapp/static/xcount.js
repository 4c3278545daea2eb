/* Post length as X counts it: a line-by-line mirror of clarion/alerts/xcount.py and of
   alert_kinds.suggested_post_text. Python's regex semantics are spelled out here (its \s,
   \w and case-insensitive [a-z]), so that both give the same number for every string. */
(function () {
  "use strict";

  var MAX_WEIGHTED_LENGTH = 280;
  var URL_LENGTH = 23;
  var LIGHT_RANGES = [[0, 4351], [8192, 8205], [8208, 8223], [8242, 8247]];
  // Python's \s for str patterns (str.isspace), which differs from JavaScript's \s.
  var WS = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  // What Python's [a-z] matches under re.IGNORECASE: also İ ı ſ and the Kelvin sign.
  var AZ = "a-zA-Z\\u0130\\u0131\\u017f\\u212a";
  var URL_RE = new RegExp(
    "[hH][tT][tT][pP][sS\\u017f]?://[^" + WS + "<>\"]+" +
    "|(?<![\\p{L}\\p{N}_@])(?:[" + AZ + "0-9-]+\\.)+[" + AZ + "]{2,}(?:/[^" + WS + "<>\"]*)?",
    "gu"
  );
  var EMOJI = "[\\u{1F000}-\\u{1FAFF}\\u2600-\\u27BF]\\uFE0F?[\\u{1F3FB}-\\u{1F3FF}]?";
  var EMOJI_SEQUENCE = new RegExp("(?:" + EMOJI + "(?:\\u200D" + EMOJI + ")*)", "gu");
  var WS_RUN = new RegExp("[" + WS + "]+", "u");
  var WS_EDGES = new RegExp("^[" + WS + "]+|[" + WS + "]+$", "gu");

  function weight(ch) {
    var cp = ch.codePointAt(0);
    for (var i = 0; i < LIGHT_RANGES.length; i++) {
      if (cp >= LIGHT_RANGES[i][0] && cp <= LIGHT_RANGES[i][1]) return 1;
    }
    return 2;
  }

  function sumWeights(text) {
    var total = 0;
    for (var ch of text) total += weight(ch);
    return total;
  }

  function plainLength(text) {
    var total = 0;
    var position = 0;
    EMOJI_SEQUENCE.lastIndex = 0;
    for (var match of text.matchAll(EMOJI_SEQUENCE)) {
      total += sumWeights(text.slice(position, match.index)) + 2;
      position = match.index + match[0].length;
    }
    return total + sumWeights(text.slice(position));
  }

  function weightedLength(text) {
    text = text.normalize("NFC");
    var total = 0;
    var position = 0;
    for (var match of text.matchAll(URL_RE)) {
      total += plainLength(text.slice(position, match.index)) + URL_LENGTH;
      position = match.index + match[0].length;
    }
    return total + plainLength(text.slice(position));
  }

  function pyStrip(text) {
    return text.replace(WS_EDGES, "");
  }

  function pySplit(text) {
    return pyStrip(text).split(WS_RUN).filter(function (part) { return part !== ""; });
  }

  function suggestedPostText(fields) {
    var text = pyStrip(fields.suggested_post || "");
    var hashtags = pyStrip(fields.hashtags || "");
    var shareUrl = pyStrip(fields.share_url || "");
    var lower = text.toLowerCase();
    var parts = [text].concat(pySplit(hashtags).filter(function (tag) {
      return lower.indexOf(tag.toLowerCase()) === -1;
    }));
    if (shareUrl && text.indexOf(shareUrl) === -1) parts.push(shareUrl);
    return parts.filter(function (part) { return part !== ""; }).join(" ");
  }

  window.ClarionXCount = {
    MAX_WEIGHTED_LENGTH: MAX_WEIGHTED_LENGTH,
    weightedLength: weightedLength,
    suggestedPostText: suggestedPostText,
  };
})();
