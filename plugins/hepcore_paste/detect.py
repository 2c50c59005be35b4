"""Language detection for pastes without a ``language`` (spec section 5, P11).

A scorer over the curated set: each language has weighted patterns (syntax,
not just keywords) whose matches are counted up to a cap; a few signatures
decide at once (``<?php``, a shebang, a unified diff header, JSON that
parses). Related languages are scored as a family and told apart by their
own features (TypeScript over JavaScript, C++ over C, SCSS over CSS).

Bounds: only the first ``max_bytes`` (at most 64 KiB) are looked at, every
pattern is linear (no nested quantifiers) and stops counting at its cap, and
the elapsed time is checked between languages: past ``time_limit`` the
answer is ``plaintext``. The worst case is measured in
``tests/paste/test_paste_detect.py`` and recorded in docs/paste.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

PLAINTEXT = "plaintext"
CURATED = (
    "javascript", "typescript", "python", "go", "rust", "java", "c", "cpp", "csharp",
    "kotlin", "ruby", "php", "bash", "powershell", "html", "css", "scss", "json", "swift",
    "yaml", "xml", "markdown", "sql", "graphql", "dockerfile", "diff", "lua", "scala",
)
MIN_NON_SPACE = 20
MAX_BYTES = 64 * 1024
SCORE_BYTES = 8 * 1024
MAX_LINE = 300
MIN_SCORE = 8.0
MARGIN = 1.3  # the winner's score over the best language of another family

M = re.MULTILINE
I = re.IGNORECASE


def _line_local(pattern: str) -> str:
    """``pattern`` with ``\\s`` meaning a blank within the line (space or tab), so
    that no pattern runs across lines: with lines cut to :data:`MAX_LINE`
    characters, backtracking stays bounded by the line."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            out.append((" \\t" if in_class else "[ \\t]") if pair == "\\s" else pair)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    weight: float
    cap: int = 3

    def score(self, text: str) -> float:
        hits = sum(1 for _ in islice(self.pattern.finditer(text), self.cap))
        return hits * self.weight


def rules(*specs: tuple[str, float] | tuple[str, float, int] | tuple[str, float, int, int]
          ) -> tuple[Rule, ...]:
    """``(pattern, weight[, cap[, flags]])`` tuples to rules (``re.M`` always)."""
    out = []
    for spec in specs:
        pattern, weight = _line_local(spec[0]), spec[1]
        cap = spec[2] if len(spec) > 2 else 3
        flags = M | (spec[3] if len(spec) > 3 else 0)
        out.append(Rule(re.compile(pattern, flags), float(weight), int(cap)))
    return tuple(out)


JS = rules(
    (r"\b(?:const|let|var)\s+[A-Za-z_$][\w$]*\s*=", 2),
    (r"(?:\)|\b\w+)\s*=>", 2),
    (r"\bfunction\s*[\w$]*\s*\([^)\n]*\)\s*\{", 3),
    (r"\bconsole\.(?:log|error|warn|info)\(", 4),
    (r"\brequire\(['\"][^'\"\n]+['\"]\)", 3),
    (r"\bmodule\.exports\b|\bexports\.\w+\s*=", 4),
    (r"^\s*import\s[^'\"\n]{0,200}\sfrom\s+['\"]", 3),
    (r"^\s*export\s+(?:default|const|function|class|async)\b", 3),
    (r"\bdocument\.(?:getElementById|querySelector\w*|createElement|addEventListener)\b", 3),
    (r"\bwindow\.\w+|\baddEventListener\(", 2),
    (r"===|!==", 2),
    (r"\basync\s+function\b|\bawait\s+[\w$.]+\(", 2),
    (r"\.then\(\s*(?:\(|\w+\s*=>|function)", 3),
    (r"\bnew Promise\(|\bJSON\.(?:parse|stringify)\(", 3),
    (r"`[^`\n]*\$\{", 2),
    (r"\bundefined\b|\bprocess\.env\.", 1),
    (r"^\s*\}\)?;\s*$", 1),
)
TS_ONLY = rules(
    (r"\w\??:\s*(?:string|number|boolean|any|void|unknown|never)(?:\[\])?\s*[,;)=|{>]", 4),
    (r"^\s*(?:export\s+)?interface\s+\w+(?:<[^>\n]*>)?(?:\s+extends\s+[\w<>, ]+)?\s*\{", 4),
    (r"^\s*(?:export\s+)?type\s+\w+(?:<[^>\n]+>)?\s*=", 4),
    (r"\b(?:private|public|protected|readonly)\s+\w+\s*[:?]", 3),
    (r"\bas\s+(?:const|string|number|any|unknown)\b", 3),
    (r"^\s*(?:export\s+)?(?:const\s+)?enum\s+\w+\s*\{", 3),
    (r"\):\s*(?:Promise<|void\b|string\b|number\b|boolean\b|[A-Z]\w*(?:<[^>\n]*>)?\s*\{)", 4),
    (r"\bimport\s+type\s|\b(?:Record|Partial|Readonly|Array)<", 3),
)
PYTHON = rules(
    (r"^\s*(?:async\s+)?def\s+\w+\s*\([^)\n]*\)\s*(?:->\s*[^:\n]+)?:\s*$", 5),
    (r"^\s*(?:async\s+)?def\s+\w+\s*\(", 2),
    (r"^from\s+[\w.]+\s+import\s+[\w*(]", 4),
    (r"^import\s+[\w.]+(?:\s+as\s+\w+)?(?:,\s*[\w.]+)*\s*$", 1),
    (r"^\s*class\s+\w+(?:\([^)\n]*\))?:\s*$", 5),
    (r"\bself\.\w+", 1),
    (r"^\s*(?:elif\b.*|except\b.*|try|finally|else)\s*:\s*$", 3),
    (r"^\s*(?:if|for|while|with)\s[^\n;{}]*:\s*$", 2),
    (r"\b(?:None|True|False)\b", 1),
    (r"if __name__ == ['\"]__main__['\"]", 6, 1),
    (r"\bf['\"][^'\"\n]*\{", 2),
    (r"\blambda\s+\w*\s*:", 2),
    (r"\"\"\"|'''", 2),
    (r"\b(?:len|range|enumerate|isinstance|print)\(", 1),
    (r"^\s*@\w+(?:\.\w+)*(?:\(.*\))?\s*$", 1),
    (r"\bnot\s+in\b|\bis\s+not\b|\bis\s+None\b", 2),
)
RUBY = rules(
    (r"^\s*def\s+(?:self\.)?\w+[?!=]?(?:\s*\([^)\n]*\))?\s*$", 3),
    (r"^\s*end\s*$", 2, 4),
    (r"^\s*puts\b|\bputs\s+['\"]", 3),
    (r"^\s*require(?:_relative)?\s+['\"]", 4),
    (r"\bdo\s*\|[\w, ]+\|", 5),
    (r"\.each(?:_with_index)?\s*(?:do\b|\{)", 3),
    (r"\battr_(?:accessor|reader|writer)\b", 5),
    (r"^\s*module\s+[A-Z]\w*\s*$", 3),
    (r"^\s*class\s+[A-Z]\w*(?:\s*<\s*[A-Z][\w:]*)?\s*$", 2),
    (r":\w+\s*=>|\b\w+:\s+['\":]\w", 1),
    (r"^\s*@\w+\s*=|\bunless\b", 2),
    (r"\belsif\b", 4),
    (r"#\{[^}\n]+\}", 2),
    (r"\bnil\b", 1),
)
LUA = rules(
    (r"\blocal\s+\w+(?:\s*,\s*\w+)*\s*=\s", 4),
    (r"\blocal\s+function\b", 5),
    (r"^\s*(?:local\s+)?function\s+[\w.:]+\s*\([^)\n]*\)\s*$", 3),
    (r"\bthen\s*$", 2),
    (r"\belseif\b", 4),
    (r"~=", 3),
    (r"\w\s*\.\.\s*[\"'\w]|[\"']\s*\.\.\s*\w", 2),
    (r"\bi?pairs\(", 4),
    (r"^\s*--(?!-)\S?", 1),
    (r"^\s*end\s*$", 2, 4),
    (r"\bnil\b", 1),
    (r"^\s*return\s+\w+\s*$", 1),
)
GO = rules(
    (r"^package\s+\w+\s*$", 4, 1),
    (r"^\s*func\s+(?:\(\w+\s+\*?\w+\)\s*)?\w+\(", 5),
    (r":=", 2),
    (r"\bfmt\.(?:Println|Printf|Sprintf|Errorf|Print|Fprintf)\(", 5),
    (r"^import\s+(?:\(\s*$|\")", 4, 1),
    (r"\berr\s*!=\s*nil\b", 5),
    (r"\bgo\s+func\b|\bchan\s+\w+|<-\s*\w+", 3),
    (r"\bdefer\s+\w+", 3),
    (r"^\s*type\s+\w+\s+(?:struct|interface)\s*\{", 5),
    (r"\[\]\w+\{|\bmake\(", 2),
)
RUST = rules(
    (r"\bfn\s+\w+(?:<[^>\n]*>)?\s*\(", 4),
    (r"\blet\s+mut\s+\w+", 4),
    (r"^\s*impl(?:<[^>\n]*>)?\s+[\w:<>]+", 4),
    (r"\b(?:println|print|format|vec|panic|assert_eq|assert|write|writeln|eprintln)!", 4),
    (r"&mut\s|&self\b|&str\b", 4),
    (r"^\s*use\s+\w+::", 4),
    (r"->\s*(?:Self|Result<|Option<|i32|i64|u\d+|usize|bool|String|&)", 2),
    (r"#\[(?:derive|test|cfg)", 5),
    (r"\.unwrap\(\)|\?;", 2),
    (r"^\s*(?:pub\s+)?(?:struct|enum|trait|mod)\s+\w+", 2),
    (r"\bSome\(|\bOk\(|\bErr\(", 1),
    (r"\bpub\s+(?:fn|struct|enum)\b", 3),
)
JAVA = rules(
    (r"^\s*package\s+[\w.]+;", 4, 1),
    (r"^\s*import\s+(?:static\s+)?[\w.]+(?:\.\*)?;", 3),
    (r"\bpublic\s+(?:static\s+)?(?:final\s+)?(?:class|interface|enum|void|int|String|boolean)\b", 2),
    (r"\bSystem\.out\.print(?:ln|f)?\(", 6),
    (r"\bpublic static void main\(String", 6, 1),
    (r"@Override\b|@Autowired\b|@Test\b|@SpringBootApplication\b", 3),
    (r"\bString\[\]|\bArrayList<|\bHashMap<|\bList<\w+>\s+\w+\s*=", 2),
    (r"\b(?:private|protected)\s+(?:final\s+)?(?:static\s+)?[A-Z]\w*(?:<[^>\n]*>)?\s+\w+\s*[;=]", 3),
    (r"\bthrows\s+\w+", 4),
    (r"\bnew\s+[A-Z]\w*(?:<[^>\n]*>)?\(", 1),
    (r"\b(?:extends|implements)\s+[A-Z]\w*", 1),
    (r"\bString\s+\w+\s*[=;,)]", 2),
    (r"^\s*@[A-Z]\w+(?:\([^)\n]*\))?\s*$", 2),
    ((r"\b(?:public|private|protected)\s+(?:static\s+)?(?:final\s+)?[A-Z]\w*(?:<[^>\n]*>)?\s+\w+\s*"
     r"\([^)\n]*\)\s*(?:throws\s+[\w, ]+)?\{\s*$"), 3),
)
CSHARP = rules(
    (r"^\s*using\s+[\w.]+;", 4),
    (r"^\s*namespace\s+[\w.]+\s*[{;]?\s*$", 2, 1),
    (r"\bConsole\.(?:WriteLine|Write|ReadLine)\(", 6),
    (r"\{\s*get;\s*(?:private\s+|init;\s*)?(?:set;\s*)?\}", 6),
    (r"\bstatic\s+(?:async\s+)?(?:void|Task|int)\s+Main\(", 6, 1),
    (r"\basync\s+Task(?:<[^>\n]*>)?\s+\w+", 5),
    ((r"\b(?:public|private|internal|protected)\s+(?:static\s+)?(?:readonly\s+)?"
     r"(?:string|int|bool|void|decimal|double)\b"), 2),
    (r"^\s*\[[A-Z]\w*(?:\([^)\n]*\))?\]\s*$", 3),
    (r"\bstring\[\]|\bstring\s+\w+\s*[=;,)]", 3),
    (r"\.(?:Select|Where|ToList|FirstOrDefault|Any|OrderBy)\(", 3),
    (r"\bnameof\(|\$\"[^\"\n]*\{", 3),
    (r"\bvar\s+\w+\s*=\s*(?:new\b|await\b)", 2),
    (r"\bnew\s+[A-Z]\w*(?:<[^>\n]*>)?\(", 1),
)
KOTLIN = rules(
    (r"\bfun\s+(?:<[^>\n]*>\s*)?[\w.]+\s*\(", 5),
    (r"\bval\s+\w+(?:\s*:\s*[\w<>?, ]+)?\s*=", 2),
    (r"\bvar\s+\w+\s*:\s*\w+", 1),
    (r"\bdata\s+class\b", 5),
    (r"\bcompanion\s+object\b", 5),
    (r"\bwhen\s*(?:\([^)\n]*\))?\s*\{", 4),
    (r"\?\.\w|!!\.|\?:", 2),
    (r"\b(?:listOf|mutableListOf|mapOf|mutableMapOf|setOf|arrayOf)\(", 5),
    (r"\boverride\s+fun\b", 5),
    (r"\bprintln\(", 1),
    (r"^\s*package\s+[\w.]+\s*$", 2, 1),
    (r"\bit\.\w+", 2),
    (r"\bsuspend\s+fun\b|\blateinit\b", 4),
)
SCALA = rules(
    (r"^\s*object\s+\w+(?:\s+extends\s+\w+)?\s*\{", 3),
    (r"\bcase\s+class\b", 6),
    (r"\bdef\s+\w+(?:\[[^\]\n]*\])?(?:\([^)\n]*\))*\s*(?::\s*[\w\[\], ]+)?\s*=", 5),
    (r"\bsealed\s+trait\b|^\s*trait\s+\w+", 4),
    (r"\bcase\s+[^=\n]+=>", 4),
    (r"\bmatch\s*\{", 4),
    (r"\bimplicit\b", 4),
    (r"^\s*import\s+scala\.|^\s*import\s+[\w.]+\._", 5),
    (r"\bextends\s+App\b", 5),
    (r":\s*(?:Int|String|Boolean|Unit|Double|Long)\b", 1),
    (r"\b(?:Seq|List|Map|Some)\(|\bOption\[|\bFuture\[", 3),
    (r"\bval\s+\w+", 1),
    (r"\bprintln\(", 1),
)
SWIFT = rules(
    (r"^\s*import\s+(?:UIKit|Foundation|SwiftUI|Combine|XCTest)\s*$", 6),
    (r"\bfunc\s+\w+(?:<[^>\n]*>)?\s*\(", 4),
    (r"\bguard\s+let\b|\bif\s+let\b|\bguard\b[^\n]*\belse\b", 5),
    (r"\blet\s+\w+(?:\s*:\s*[\w\[\]?<>]+)?\s*=", 1),
    (r"\bvar\s+\w+\s*:\s*[\w\[\]?<>]+", 1),
    (r"\bstruct\s+\w+\s*:\s*\w+", 3),
    ((r"@(?:State|Published|ObservedObject|MainActor|objc|IBOutlet|IBAction|escaping|Binding|"
     r"EnvironmentObject)\b"), 5),
    (r"\\\(\w", 4),
    (r"->\s*[A-Z\[]\w*", 1),
    (r"\bprint\(", 1),
    (r"\b(?:override\s+)?init\(", 3),
    (r"\bextension\s+[A-Z]\w*|\bprotocol\s+\w+", 3),
    (r"\bnil\b", 1),
    (r"\bfileprivate\b|\bmutating\b|\bweak\s+var\b", 4),
)
C_FAMILY = rules(
    ((r"^\s*#include\s*<(?:stdio|stdlib|string|stdint|unistd|math|errno|fcntl|assert|stdbool|"
     r"pthread|signal|time|ctype|sys/\w+)\.h>"), 5),
    (r"^\s*#include\s*[<\"][\w/.]+[>\"]", 3),
    (r"^\s*#(?:define|ifdef|ifndef|endif|pragma)\b", 3),
    (r"\b(?:printf|fprintf|malloc|free|sizeof|memcpy|strlen|strcmp|snprintf)\(", 3),
    (r"\bint\s+main\s*\(", 4, 1),
    (r"\bstruct\s+\w+\s*\*|\bchar\s*\*\s*\w+|\bvoid\s*\*", 3),
    (r"->\w+", 1),
    (r"\bNULL\b", 2),
    (r"\btypedef\s+(?:struct|enum|unsigned|int|void)", 4),
    ((r"^(?:static\s+)?(?:const\s+)?(?:unsigned\s+)?(?:int|void|char|double|float|long|size_t|bool)"
     r"\s+\**\w+\s*\([^)\n]*\)\s*\{?\s*$"), 3),
)
CPP_ONLY = rules(
    (r"\bstd::\w+", 5),
    ((r"#include\s*<(?:iostream|vector|string|map|memory|algorithm|unordered_map|set|thread|mutex|"
     r"optional|array|utility|functional|sstream|fstream|cstdio|cstdlib|chrono)>"), 6),
    (r"\b(?:cout|cerr|endl)\b", 4),
    (r"\btemplate\s*<", 5),
    (r"\bnamespace\s+\w+|\busing\s+namespace\b", 4),
    (r"^\s*(?:public|private|protected):\s*$", 4),
    (r"\bnullptr\b", 4),
    (r"\bauto\s+[&*]?\w+\s*[=:]|\bauto&", 2),
    (r"\bclass\s+\w+(?:\s*:\s*(?:public|private)\s+\w+)?\s*\{", 2),
    (r"\b(?:virtual|override|constexpr|noexcept)\b", 3),
)
PHP = rules(
    (r"\$\w+\s*=[^=]", 2),
    (r"\$this->", 5),
    (r"->\w+\(", 1),
    (r"\b(?:public|private|protected)\s+(?:static\s+)?function\b|\bfunction\s+\w+\(\$", 5),
    (r"\barray\(|\bforeach\s*\(\s*\$\w+\s+as\b", 5),
    (r"\$_(?:GET|POST|SERVER|SESSION|REQUEST)\[", 6),
    (r"^\s*namespace\s+[\w\\]+;|^\s*use\s+[\w\\]+\\\w+;", 5),
    (r"\b(?:isset|empty|count|strlen|str_replace|implode|explode|array_map|in_array)\(\$", 4),
    (r"=>\s*\$|'\w+'\s*=>", 2),
    (r"\becho\s+\$", 2),
)
BASH = rules(
    (r"^\s*(?:if|elif|while)\s+\[\[?\s", 5),
    (r";\s*then\s*$|^\s*then\s*$", 3),
    (r"^\s*fi\s*$", 5),
    (r"^\s*done\s*$", 4),
    (r"^\s*esac\s*$", 5),
    (r";\s*do\s*$", 3),
    (r"^\s*(?:export\s+)?[A-Z_][A-Z0-9_]*=\S", 3),
    (r"\$\{\w+(?::-[^}\n]*)?\}|\$\(\w", 2),
    ((r"^\s*(?:echo|printf|cd|ls|mkdir|rm|cp|mv|chmod|chown|grep|sed|awk|curl|wget|tar|sudo|apt-get|"
     r"apt|yum|brew|git|docker|kubectl|npm|pip|make|source|exit|set|cat|ssh|systemctl|trap|read"
     r"|shift|cargo|go|python3?)\s"), 2, 5),
    (r"\s\|\s*(?:grep|sed|awk|sort|uniq|head|tail|wc|xargs|tee|cut|tr|jq)\b", 4),
    (r"\s&&\s|\s\|\|\s", 1),
    (r"2>&1|>\s*/dev/null", 4),
    (r"\"\$@\"|\$#|\$\?|\"\$\d\"|\$\d\b", 3),
    (r"^\s*(?:function\s+)?[\w-]+\s*\(\)\s*\{", 3),
    (r"^\s*local\s+\w+=", 3),
    (r"^\s*#\s", 1),
)
POWERSHELL = rules(
    ((r"\b(?:Get|Set|New|Remove|Write|Invoke|Start|Stop|Import|Export|Test|Add|Out|Select|Where|"
     r"ForEach|Format|Read|Convert|ConvertTo|ConvertFrom|Copy|Move|Join|Split|Restart|Wait)"
     r"-[A-Z]\w+"), 5),
    (r"\$\w+\s*=", 1),
    (r"\s-(?:eq|ne|gt|lt|ge|le|like|match|and|or|not|contains|notlike|in)\s", 2),
    (r"\$_\b|\$PSScriptRoot\b|\$env:\w+|\$true\b|\$false\b|\$null\b", 5),
    (r"^\s*param\s*\(", 5, 1),
    (r"\[(?:string|int|switch|bool|array|hashtable|datetime|PSCustomObject|Parameter)(?:\[\])?\]",
     4, 3, I),
    (r"@\{|@\(", 2),
    (r"^\s*function\s+[A-Z]\w*-\w+", 4),
    ((r"\s-(?:Path|Name|Value|Filter|Recurse|Force|ErrorAction|Object|Property|Encoding|Credential|"
     r"ComputerName)\b"), 3),
)
HTML_TAGS = (r"div|span|p|a|ul|ol|li|table|tr|td|th|body|head|html|meta|link|script|form|input|"
             r"button|section|nav|header|footer|main|article|h[1-6]|img|br|label|title|style|"
             r"select|option|textarea")
HTML = rules(
    (rf"<(?:{HTML_TAGS})\b[^<>\n]*>", 2, 8, I),
    (rf"</(?:{HTML_TAGS})>", 2, 8, I),
    (r"\s(?:class|href|src|id|style|alt|type|rel|charset|lang)=\"", 1, 5),
)
XML = rules(
    (r"<[\w:.-]+(?:\s+[\w:.-]+=\"[^\"\n]*\")*\s*/?>", 1, 10),
    (r"</[\w:.-]+>", 1, 10),
    (r"<!\[CDATA\[|<!--", 2, 2),
    (r"\sxmlns(?::\w+)?=\"", 4, 1),
    (r"^\s*<[\w:.-]+(?:\s|$)", 1, 6),
    (r"\s[\w-]+:[\w-]+=\"", 2, 4),
)
CSS_PROPS = (r"color|background(?:-\w+)?|margin(?:-\w+)?|padding(?:-\w+)?|font(?:-\w+)?|display|"
             r"width|height|border(?:-\w+)?|position|top|left|right|bottom|text-\w+|line-height|"
             r"flex(?:-\w+)?|grid(?:-\w+)?|align-\w+|justify-\w+|z-index|opacity|transition|"
             r"transform|overflow(?:-\w)?|cursor|box-shadow|content|max-\w+|min-\w+|gap|"
             r"list-style|outline|box-sizing|animation|fill|stroke|visibility|white-space")
CSS = rules(
    (rf"^\s*(?:{CSS_PROPS})\s*:\s*[^;\n]+;", 3, 8),
    (r"@media\s|@import\s|@font-face\b|@keyframes\s|@supports\s", 4),
    (r"\d(?:px|em|rem|vh|vw|%)\b", 1),
    (r"#[0-9a-fA-F]{3,6}\b", 1),
    (r":(?:hover|focus|active|before|after|first-child|last-child|nth-child|root)\b", 2),
    (r"!important", 3),
    ((r"^\s*(?:[.#][\w-]+|[a-z][\w-]*(?:[.#:][\w-]+)+|(?:html|body|h[1-6]|p|a|ul|ol|li|div|span|"
     r"img|table|button|input|nav|header|footer|main|section|form|label|pre|code)\b)"
     r"[^{};()\n]{0,200}\{\s*$"), 2, 6),
    (r"^\s*\}\s*$", 1, 4),
)
SCSS_ONLY = rules(
    (r"^\s*\$[\w-]+\s*:", 5),
    (r"@(?:mixin|include|extend|use|function|each|if|return|forward)\s", 5),
    (r"&(?::|\.|-|__|\s*\{|\s*>)", 4),
    (r"#\{\$", 5),
)
JSON_HINT = rules(
    (r"^\s*\"[^\"\n]+\"\s*:\s*", 2, 10),
    (r"^\s*[\[{]\s*$", 1, 4),
)
YAML = rules(
    (r"^---\s*$", 2, 1),
    (r"^\s*[\w.-]+:(?:[ \t]+[^;,{\n]*[^;,{\s])?[ \t]*$", 1, 12),
    (r"^\s*-\s+[\w.-]+:\s", 3),
    (r":\s*[|>][-+]?\s*$", 3),
    (r"^\s*-\s+\S", 1, 6),
)
MARKDOWN = rules(
    (r"^#{2,6}\s+\S", 3, 4),
    (r"^#\s+\S", 1, 2),
    (r"\[[^\]\n]+\]\((?:https?://|/|\.\.?/|#)[^)\s]*\)", 4),
    (r"^```", 6, 2),
    (r"\*\*[^*\n]+\*\*|__[^_\n]+__", 3),
    (r"^\s*[-*+]\s+\S", 1, 6),
    (r"^\s*\d+\.\s+\S", 1, 4),
    (r"^>\s", 2),
    (r"`[^`\n]+`", 1, 5),
    (r"^\|?\s*:?-{3,}:?\s*\|", 4, 1),
    (r"^(?:=+|-+)\s*$", 2, 2),
    (r"!\[[^\]\n]*\]\(", 4),
)
SQL = rules(
    (r"^\s*SELECT\b", 3, 3, I),
    (r"\bFROM\s+[\w.\"`]+", 1, 3, I),
    ((r"^\s*(?:INSERT\s+INTO|UPDATE\s+[\w.\"`]+\s+SET|DELETE\s+FROM|CREATE\s+(?:TABLE|INDEX|VIEW|"
     r"UNIQUE\s+INDEX|OR\s+REPLACE|DATABASE|SCHEMA)|ALTER\s+TABLE|DROP\s+(?:TABLE|INDEX)|"
     r"WITH\s+\w+\s+AS\s*\()\b"), 5, 3, I),
    ((r"\b(?:WHERE|GROUP\s+BY|ORDER\s+BY|INNER\s+JOIN|LEFT\s+JOIN|JOIN|HAVING|LIMIT\s+\d|VALUES\s*\(|"
     r"COUNT\(|AND|OR|AS|ON)\b"), 1, 8),
    ((r"\b(?:VARCHAR|INTEGER|PRIMARY\s+KEY|NOT\s+NULL|FOREIGN\s+KEY|REFERENCES|SERIAL|TIMESTAMP|"
     r"BOOLEAN|BIGINT|TEXT\s+NOT)\b"), 3, 3, I),
    (r";\s*$", 1, 3),
    (r"^\s*--\s", 1),
)
GRAPHQL = rules(
    (r"^\s*(?:query|mutation|subscription)\s*\w*\s*(?:\([^)\n]*\))?\s*\{", 6, 2),
    (r"^\s*fragment\s+\w+\s+on\s+\w+", 6),
    (r"^\s*(?:type|input|interface|enum|union)\s+\w+(?:\s+implements\s+[\w& ]+)?\s*[{=]", 3),
    (r":\s*(?:\[[A-Z]\w*!?\]!?|[A-Z]\w*!)\s*$", 3, 4),
    (r":\s*(?:ID|String|Int|Float|Boolean)!?\s*$", 3, 4),
    (r"\.\.\.\s*on\s+\w+|\.\.\.[A-Z]\w*", 4),
    (r"\$\w+\s*:\s*\[?[A-Z]\w*", 4),
    (r"^\s*schema\s*\{|^\s*scalar\s+\w+|^\s*extend\s+type\b", 5),
)
DOCKERFILE = rules(
    (r"^FROM\s+[\w./:@${}-]+(?:\s+AS\s+\w+)?\s*$", 6, 2, I),
    ((r"^(?:RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|ONBUILD|"
     r"STOPSIGNAL|HEALTHCHECK|SHELL)\s"), 3, 8),
)
DIFF = rules(
    (r"^diff --git ", 6, 1),
    (r"^(?:---|\+\+\+) \S", 3, 2),
    (r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@", 6, 2),
    (r"^index [0-9a-f]+\.\.[0-9a-f]+", 4, 1),
    (r"^[+-][^+-]", 0.5, 10),
)

# (language, family, rules); TS_ONLY, CPP_ONLY and SCSS_ONLY refine a family.
TABLE: tuple[tuple[str, str, tuple[Rule, ...]], ...] = (
    ("javascript", "js", JS), ("python", "python", PYTHON), ("ruby", "ruby", RUBY),
    ("lua", "lua", LUA), ("go", "go", GO), ("rust", "rust", RUST), ("java", "java", JAVA),
    ("csharp", "csharp", CSHARP), ("kotlin", "kotlin", KOTLIN), ("scala", "scala", SCALA),
    ("swift", "swift", SWIFT), ("c", "c", C_FAMILY), ("php", "php", PHP),
    ("bash", "bash", BASH), ("powershell", "powershell", POWERSHELL), ("html", "html", HTML),
    ("xml", "xml", XML), ("css", "css", CSS), ("json", "json", JSON_HINT),
    ("yaml", "yaml", YAML), ("markdown", "markdown", MARKDOWN), ("sql", "sql", SQL),
    ("graphql", "graphql", GRAPHQL), ("dockerfile", "dockerfile", DOCKERFILE),
    ("diff", "diff", DIFF),
)
REFINE = {"javascript": ("typescript", TS_ONLY, 4.0), "c": ("cpp", CPP_ONLY, 4.0),
          "css": ("scss", SCSS_ONLY, 5.0)}
SHEBANGS = (("python", "python"), ("node", "javascript"), ("ruby", "ruby"), ("lua", "lua"),
            ("pwsh", "powershell"), ("bash", "bash"), ("zsh", "bash"), ("sh", "bash"))
_SHEBANG = re.compile(r"#!\s*(?:/usr)?(?:/local)?/bin/(?:env\s+(?:-S\s+)?)?([\w.-]+)")
_YAML_LINE = re.compile(r"^\s*(?:-\s|-$|[\w.\"'/-]+:(?:\s|$)|#|\S.*[^;{},]$)")
_TAG_START = re.compile(r"^\s*<")
_JSON_START = re.compile(r"(?:\[\s*)?\{\s*\"[^\"\n]{1,100}\"\s*:")
_TAG_NAME = re.compile(r"<([A-Za-z][\w:.-]{0,100})")
_SQL_STATEMENT = re.compile(  # [ \t]*, not \s*: a run of newlines made \s* quadratic
    r"^[ \t]*(?:SELECT|INSERT\s+INTO|UPDATE\s+[\w.\"`]+\s+SET|DELETE\s+FROM|CREATE\s+\w+|"
    r"ALTER\s+TABLE|DROP\s+(?:TABLE|INDEX|VIEW)|WITH\s+\w+\s+AS\s*\(|BEGIN\b|EXPLAIN\b)\b",
    M | I)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
HTML_NAMES = frozenset(HTML_TAGS.replace("h[1-6]", "h1|h2|h3|h4|h5|h6|thead|tbody|tfoot|i|b|em|"
                                         "strong|small|hr|iframe|video|audio|source|svg|"
                                         "canvas|noscript|template|aside|figure|figcaption"
                                         ).split("|"))


@dataclass(frozen=True)
class Detection:
    """The answer (a curated identifier or ``plaintext``) and how it was reached."""

    language: str
    scores: dict[str, float]
    reason: str


def non_space_count(text: str) -> int:
    return len(text) - sum(text.count(c) for c in " \t\r\n\f\v")


def detect(text: str, *, time_limit: float = 0.1, max_bytes: int = MAX_BYTES,
           clock: Callable[[], float] = time.perf_counter) -> str:
    """The curated identifier for ``text``, or ``plaintext`` (section 5)."""
    return explain(text, time_limit=time_limit, max_bytes=max_bytes, clock=clock).language


def explain(text: str, *, time_limit: float = 0.1, max_bytes: int = MAX_BYTES,
            clock: Callable[[], float] = time.perf_counter) -> Detection:
    """:func:`detect` with the scores and the reason (for tests and tuning)."""
    started = clock()
    window, complete = _window(text, min(max_bytes, MAX_BYTES))
    if non_space_count(window) < MIN_NON_SPACE:
        return Detection(PLAINTEXT, {}, "too short")
    decided = _signature(window, complete=complete)
    if decided is not None:
        return Detection(decided, {}, "signature")
    window = "\n".join(line[:MAX_LINE] for line in window[:SCORE_BYTES].splitlines())
    scores: dict[str, float] = {}
    families: dict[str, str] = {}
    for language, family, lang_rules in TABLE:
        if clock() - started > time_limit:
            return Detection(PLAINTEXT, scores, "time limit")
        scores[language] = sum(rule.score(window) for rule in lang_rules)
        families[language] = family
    _adjust(window, scores)
    for base, (refined, extra, needed) in REFINE.items():
        bonus = sum(rule.score(window) for rule in extra)
        if bonus >= needed:
            scores[refined] = scores.pop(base) + bonus
            families[refined] = families.pop(base)
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, top = ranked[0]
    rival = next((s for lang, s in ranked[1:] if families[lang] != families[best]), 0.0)
    if top < MIN_SCORE:
        return Detection(PLAINTEXT, scores, "not confident: low score")
    if top < rival * MARGIN:
        return Detection(PLAINTEXT, scores, "not confident: close call")
    if clock() - started > time_limit:
        return Detection(PLAINTEXT, scores, "time limit")
    return Detection(best, scores, "scored")


def _window(text: str, max_bytes: int) -> tuple[str, bool]:
    """The first ``max_bytes`` bytes of ``text`` as text, and whether that is all of it."""
    if len(text) * 4 <= max_bytes:
        return text, True
    head = text[:max_bytes].encode("utf-8", "ignore")
    if len(head) <= max_bytes and len(text) <= max_bytes:
        return text, True
    return head[:max_bytes].decode("utf-8", "ignore"), False


def _signature(text: str, *, complete: bool) -> str | None:
    """Signatures that decide on their own."""
    stripped = text.strip()
    if complete and stripped[:1] in "{[" and stripped[-1:] in "}]":
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):  # nested too deeply to parse: not JSON here
            value = None
        if isinstance(value, (dict, list)) and value:
            return "json"
    elif not complete and _JSON_START.match(stripped):
        return "json"
    head = stripped[:200]
    if head.startswith("<?php") or "<?php" in stripped[:2000]:
        return "php"
    m = _SHEBANG.match(head)
    if m:
        program = m.group(1)
        for name, language in SHEBANGS:
            if program == name or program.startswith(name) and program[len(name):].strip(".0123456789") == "":
                return language
    lower = head.lower()
    if lower.startswith(("<!doctype html", "<html")):
        return "html"
    if lower.startswith("<?xml"):
        return "html" if "<html" in stripped[:4000].lower() else "xml"
    if _HUNK.match(stripped):
        return "diff"
    if re.search(r"^diff --git .*\n(?:.*\n){0,6}?@@ ", stripped[:4000], M) or (
            re.search(r"^--- \S.*\n\+\+\+ \S.*\n@@ -\d", stripped[:4000], M)):
        return "diff"
    return None


def _adjust(text: str, scores: dict[str, float]) -> None:
    """Whole-text shapes that single patterns cannot see."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return
    # YAML is a line format: most lines must look like keys, list items or comments.
    yaml_like = sum(1 for ln in lines if _YAML_LINE.match(ln) and not ln.rstrip().endswith(
        (";", "{", "}", ")", ".", "?", "!")))
    keyish = sum(1 for ln in lines if re.match(r"^\s*(?:-\s+)?[\w.\"'/-]+:(?:\s|$)", ln))
    if yaml_like < 0.8 * len(lines) or keyish < max(2, 0.4 * len(lines)):
        scores["yaml"] = 0.0
    else:
        scores["yaml"] += 4
    # Markup: XML wants most of the text inside tags, HTML its own tag names.
    if not _TAG_START.match(text):
        scores["xml"] = 0.0
        scores["html"] *= 0.5
    else:
        names = _TAG_NAME.findall(text)
        html = sum(1 for n in names if n.lower() in HTML_NAMES)
        other = len(names) - html
        if other >= 2 and other > html:
            scores["xml"] += 4 + min(other, 10)
            scores["html"] *= 0.3
        elif html >= 2:
            scores["xml"] *= 0.3
    # A Dockerfile is made of instructions; a few capitalised words are not one.
    instructions = sum(1 for ln in lines if re.match(
        r"^(?:FROM|RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|"
        r"HEALTHCHECK|SHELL)\s", ln))
    code_lines = sum(1 for ln in lines if not ln.lstrip().startswith("#"))
    if instructions < 0.5 * max(1, code_lines) or not re.search(r"^FROM\s", text, M | I):
        scores["dockerfile"] = 0.0
    # SQL is made of statements: the capitals of a licence's warranty
    # disclaimer (AS IS, OR, ON, FROM) are not one.
    if not _SQL_STATEMENT.search(text):
        scores["sql"] = 0.0
    # Prose: long lines of words ending in full stops are not code.
    sentences = sum(1 for ln in lines if len(ln) > 60 and re.search(r"[a-z]{2,}[.?!]\s*$", ln)
                    and not re.search(r"[;{}=<>]|\(\)", ln))
    if sentences >= 0.5 * len(lines):
        for language in scores:
            if language != "markdown":
                scores[language] *= 0.3
