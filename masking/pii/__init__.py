"""China PII pack: validators, column detection and test-data generators.

Validators take Arrow arrays and return numpy ``bool`` arrays (vectorized); ``is_valid_*``
are scalar conveniences. :func:`detect_column` / :func:`scan_table` classify columns from a
sample and map them to JR/T 0171-2020 classes. Test-data generators live in
:mod:`masking.pii.generators` (not imported here).
"""

from __future__ import annotations

from masking.pii._data import COMPOUND_SURNAMES, PROVINCES, SINGLE_SURNAMES
from masking.pii.detect import (
    JRT_CLASS,
    PII_TYPES,
    ColumnScan,
    Detection,
    detect_column,
    scan_table,
)
from masking.pii.textual import (
    cn_address_valid,
    cn_name_valid,
    date_valid,
    email_valid,
    ipv4_valid,
    ipv6_valid,
    is_valid_cn_address,
    is_valid_cn_name,
    is_valid_date,
    is_valid_email,
    is_valid_ipv4,
    is_valid_ipv6,
)
from masking.pii.validators import (
    bank_card_score,
    bank_card_valid,
    hk_macau_permit_valid,
    is_luhn_valid,
    is_valid_bank_card,
    is_valid_hk_macau_permit,
    is_valid_mobile,
    is_valid_passport,
    is_valid_resident_id,
    is_valid_uscc,
    luhn_valid,
    mobile_score,
    mobile_valid,
    passport_valid,
    resident_id_birth_date,
    resident_id_birth_dates,
    resident_id_gender,
    resident_id_genders,
    resident_id_region,
    resident_id_valid,
    uscc_valid,
)

__all__ = [
    "PII_TYPES",
    "JRT_CLASS",
    "PROVINCES",
    "SINGLE_SURNAMES",
    "COMPOUND_SURNAMES",
    "Detection",
    "ColumnScan",
    "detect_column",
    "scan_table",
    "resident_id_valid",
    "resident_id_birth_date",
    "resident_id_birth_dates",
    "resident_id_gender",
    "resident_id_genders",
    "resident_id_region",
    "mobile_valid",
    "mobile_score",
    "luhn_valid",
    "bank_card_score",
    "bank_card_valid",
    "uscc_valid",
    "passport_valid",
    "hk_macau_permit_valid",
    "email_valid",
    "ipv4_valid",
    "ipv6_valid",
    "cn_name_valid",
    "cn_address_valid",
    "date_valid",
    "is_valid_resident_id",
    "is_valid_mobile",
    "is_luhn_valid",
    "is_valid_bank_card",
    "is_valid_uscc",
    "is_valid_passport",
    "is_valid_hk_macau_permit",
    "is_valid_email",
    "is_valid_ipv4",
    "is_valid_ipv6",
    "is_valid_cn_name",
    "is_valid_cn_address",
    "is_valid_date",
]
