"""Tabular input shared by every import (usage, prices, case files, indicator results).

Pure Python over pyarrow/pandas, no Django (the engines may use the word lists):

* :mod:`.problems`: the one problem collector (row, column, message; the first 100 kept);
* :mod:`.words`: the true/false words;
* :mod:`.header`: finding the header row under title rows;
* :mod:`.workbook`: an Excel workbook's sheets and their first rows;
* :mod:`.formats`: vectorised, exact parsing of US formats (dates, amounts, yes/no, NPIs);
* :mod:`.mapping`: canonical fields, a proposed mapping from a file's columns, its checks,
  and turning a batch of the file's columns into the canonical columns.
"""
