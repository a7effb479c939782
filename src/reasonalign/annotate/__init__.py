"""Human rating studies: the web app raters use (`app`) and the study's statistics (`stats`).

The study itself (SQLite schema, tokens, ratings) is `reasonalign.judges.study`, one layer down,
so `eval --judge human` can read a study without the web app.
"""
