"""The same rules as bench/pseudonymise-spec.yaml, written the straightforward pandas way:
what a data engineer would write without Haven. Usage: pseudonymise_pandas.py KEY IN.csv OUT.csv
"""
import hashlib
import hmac
import sys

import pandas as pd

key = open(sys.argv[1], "rb").read()
frame = pd.read_csv(sys.argv[2], dtype=str, keep_default_na=False)


def pseudonymise(column, lower=False):
    subkey = hmac.new(key, b"haven-column:" + column.encode(), hashlib.sha256).digest()

    def one(value):
        value = value.strip()
        if lower:
            value = value.lower()
        if not value:
            return ""
        return hmac.new(subkey, value.encode(), hashlib.sha256).hexdigest()[:16]

    frame[column] = frame[column].map(one)


pseudonymise("nhs_number")
pseudonymise("family_name", lower=True)
born = pd.to_datetime(frame["date_of_birth"], format="%Y-%m-%d").dt.year
band = born // 5 * 5
frame["date_of_birth"] = band.astype(str) + "-" + (band + 4).astype(str)
frame["diagnosis_date"] = pd.to_datetime(frame["diagnosis_date"], format="%Y-%m-%d").dt.strftime("%Y-%m")
frame["postcode"] = frame["postcode"].str[:4]
age = frame["age_at_diagnosis"].astype(int)
lower = age // 10 * 10
frame["age_at_diagnosis"] = (lower.astype(str) + "-" + (lower + 9).astype(str)).where(age < 90, "90+")
frame = frame[["nhs_number", "family_name", "date_of_birth", "postcode", "age_at_diagnosis", "sex",
               "diagnosis_date", "icd10_code", "stage", "treatment", "survival_days"]]
sizes = frame.groupby(["date_of_birth", "postcode", "age_at_diagnosis", "sex"]).size()
print(f"rows {len(frame)}, classes {len(sizes)}, minimum k {sizes.min()}", file=sys.stderr)
frame.to_csv(sys.argv[3], index=False)
