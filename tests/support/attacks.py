"""Model output that tries to run HTML or script in the page, for the display and browser tests."""

# A prompt and answer whose HTML would run, or fetch, if the page rendered it.
ATTACK = (
    'Look: <img src=x onerror="window.__plumb_ran=1"> <script>window.__plumb_ran=2</script> '
    '<a href="javascript:window.__plumb_ran=3">link</a>\n```python\nprint("<b>hi</b>")\n```'
)

# Each of these got HTML past an earlier filter that tried to tell code from prose as the renderer does.
TRICKS = [
    '<img src=x onerror="alert(1)"> <script>alert(2)</script> <a href="javascript:alert(3)">x</a>',
    "`a\n\n<img src=//evil/x>\n\n`",  # a code span cannot cross a paragraph break in the renderer
    "\\`<img src=//evil/x>`",  # an escaped backtick opens no code span
    "```\nx\n```~\n<img src=//evil/x>",  # the renderer closes this fence, a stricter parser does not
    "- a\n\n  ```\n  x\n     ```\n<img src=//evil/x>",  # a fence in a list item closes at the item's indent
    "![x][r]\n\n[r]: https://evil/p.png",  # a reference-style image
    "![`x`](https://evil/p.png)",  # a code span inside the image's label
    "![a\nb](https://evil/p.png)",  # a label across lines
    "[a [b] c](javascript:alert(1))",
    "- [z]: javascript:alert(1)\n\n[z]",
    "[q](&#106;avascript:alert(1)) [r](JaVaScRiPt:alert(1)) [s](<javascript:alert(1)>)",
    "<!-- comment --> <![CDATA[x]]> <?php x ?> </div> <svg/onload=alert(1)>",
    "data:text/html;base64,PHNjcmlwdD4= and vbscript:msgbox and file:///etc/passwd",
]
