"""The script a billing user would write instead of ordersum: a psycopg
server-side cursor streaming the same query into XlsxWriter in
constant_memory mode, with the same two sheets and columns.

    python peer.py DATABASE_URL COMPANY START END OUTPUT.xlsx

`export` is the same work on an open connection (bench/celery_peer.py's task).
"""
import sys
from datetime import timezone

import psycopg
import xlsxwriter

COMMON = [
    "OrderNo", "Status", "OrderType", "OrderTypeName", "ChargeType", "ChargeTypeName",
    "ProductCode", "ModelId", "ModelName", "ResourceId", "Region", "OrganizationId",
    "OrganizationName", "UserEmail", "PricingSku", "PricingUnit", "PricingUnitName",
    "Quantity", "ListPrice", "DiscountPrice", "OriginalPrice", "OrderTotalPrice",
    "Currency", "StartTime", "EndTime",
]
PAID = COMMON + ["PaidTime", "CashAccount", "BonusAccount", "Coupon"]
UNPAID = COMMON + ["CreateTime"]
MAX_ROWS = 1_048_575

QUERY = """
SELECT o.order_no, o.status, o.order_type, lo.name, o.charge_type, lc.name, o.product_code,
       o.model_id, o.model_name, o.resource_id, o.region, o.organization_id, o.organization_name,
       o.user_email, o.pricing_sku, o.pricing_unit, lu.name, o.quantity, o.list_price,
       o.discount_price, o.original_price, o.total_price, o.currency, o.start_time, o.end_time,
       o.paid_time, o.cash_account, o.bonus_account, o.coupon, o.created_at
FROM orders o
LEFT JOIN enum_labels lo ON lo.kind = 'order_type' AND lo.value = o.order_type
LEFT JOIN enum_labels lc ON lc.kind = 'charge_type' AND lc.value = o.charge_type
LEFT JOIN enum_labels lu ON lu.kind = 'pricing_unit' AND lu.value = o.pricing_unit
WHERE o.company_id = %s AND o.start_time >= to_timestamp(%s) AND o.start_time < to_timestamp(%s)
  AND o.status IN (1, 2)
ORDER BY o.start_time, o.id
"""


class Sheets:
    """One kind of sheet, continued in 'Name (2)', ... when full."""

    def __init__(self, workbook, name, headers, formats):
        self.workbook, self.name, self.headers, self.formats = workbook, name, headers, formats
        self.part, self.row, self.sheet = 0, 0, None
        self.rows = 0
        self.new_sheet()

    def new_sheet(self):
        self.part += 1
        name = self.name if self.part == 1 else f"{self.name} ({self.part})"
        self.sheet = self.workbook.add_worksheet(name)
        self.sheet.write_row(0, 0, self.headers, self.formats["header"])
        self.sheet.freeze_panes(1, 0)
        self.row = 0

    def next_row(self):
        if self.row >= MAX_ROWS:
            self.new_sheet()
        self.row += 1
        self.rows += 1
        return self.row


def local(t):
    return t.astimezone(timezone.utc).replace(tzinfo=None) if t is not None else None


def export(conn, company, start, end, output):
    """Writes the summary of COMPANY's orders in [START, END) to OUTPUT;
    returns the rows written to the paid and the unpaid sheets."""
    workbook = xlsxwriter.Workbook(output, {"constant_memory": True})
    formats = {
        "header": workbook.add_format({"bold": True}),
        "amount": workbook.add_format({"num_format": "#,##0.00######"}),
        "time": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
    }
    paid = Sheets(workbook, "Paid Orders", PAID, formats)
    unpaid = Sheets(workbook, "Unpaid Orders", UNPAID, formats)
    amount, time = formats["amount"], formats["time"]
    with conn.transaction():
        with conn.cursor(name="orders") as cur:
            cur.itersize = 10_000
            cur.execute(QUERY, (int(company), int(start), int(end)))
            for r in cur:
                is_paid = r[1] == 2
                target = paid if is_paid else unpaid
                row = target.next_row()
                ws = target.sheet
                ws.write_string(row, 0, r[0])
                ws.write_string(row, 1, "Paid" if is_paid else "Unpaid")
                for col, value in ((2, r[2]), (4, r[4]), (11, r[11]), (15, r[15])):
                    ws.write_number(row, col, value)
                for col, value in ((3, r[3]), (5, r[5]), (6, r[6]), (7, r[7]), (8, r[8]), (9, r[9]),
                                   (10, r[10]), (12, r[12]), (13, r[13]), (14, r[14]), (16, r[16]),
                                   (22, r[22])):
                    if value:
                        ws.write_string(row, col, value[:32767])
                for col, value in ((17, r[17]), (18, r[18]), (19, r[19]), (20, r[20]), (21, r[21])):
                    ws.write_number(row, col, float(value), amount)
                ws.write_datetime(row, 23, local(r[23]), time)
                ws.write_datetime(row, 24, local(r[24]), time)
                if is_paid:
                    if r[25] is not None:
                        ws.write_datetime(row, 25, local(r[25]), time)
                    for col, value in ((26, r[26]), (27, r[27]), (28, r[28])):
                        ws.write_number(row, col, float(value), amount)
                else:
                    ws.write_datetime(row, 25, local(r[29]), time)
    for sheets in (paid, unpaid):
        sheets.sheet.autofilter(0, 0, max(sheets.row, 1), len(sheets.headers) - 1)
    workbook.close()
    return paid.rows, unpaid.rows


def main():
    url, company, start, end, output = sys.argv[1:6]
    with psycopg.connect(url) as conn:
        export(conn, company, start, end, output)


if __name__ == "__main__":
    main()
