-- Tables shared with the billing system (DESIGN §5). The billing system writes
-- them; ordersum only reads them. Created here so a fresh database (tests,
-- demos) has them; IF NOT EXISTS keeps an existing billing schema untouched.

CREATE TABLE IF NOT EXISTS orders (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no          text        NOT NULL UNIQUE,
    company_id        bigint      NOT NULL,
    organization_id   bigint      NOT NULL,
    organization_name text        NOT NULL DEFAULT '',
    user_email        text        NOT NULL DEFAULT '',
    status            smallint    NOT NULL,          -- 1 unpaid, 2 paid, 3 revoked
    order_type        int         NOT NULL,
    charge_type       int         NOT NULL,
    product_code      text        NOT NULL,          -- 'modelverse' | 'sandbox'
    model_id          text        NOT NULL DEFAULT '',
    model_name        text        NOT NULL DEFAULT '',
    resource_id       text        NOT NULL,
    region            text        NOT NULL,
    pricing_sku       text        NOT NULL,
    pricing_unit      int         NOT NULL,
    quantity          numeric(30,8) NOT NULL,
    list_price        numeric(20,8) NOT NULL DEFAULT 0,
    discount_price    numeric(20,8) NOT NULL DEFAULT 0,
    original_price    numeric(20,8) NOT NULL DEFAULT 0,
    total_price       numeric(20,8) NOT NULL DEFAULT 0,
    cash_account      numeric(20,8) NOT NULL DEFAULT 0,
    bonus_account     numeric(20,8) NOT NULL DEFAULT 0,
    coupon            numeric(20,8) NOT NULL DEFAULT 0,
    currency          text        NOT NULL DEFAULT 'CNY',
    start_time        timestamptz NOT NULL,          -- billing start: the request window
    end_time          timestamptz NOT NULL,
    paid_time         timestamptz NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- The worker's keyset scan: WHERE company_id = $1 AND start_time in window
-- AND (start_time, id) > ($k1, $k2) ORDER BY start_time, id.
CREATE INDEX IF NOT EXISTS orders_company_start_id_idx
    ON orders (company_id, start_time, id);

CREATE TABLE IF NOT EXISTS api_keys (
    public_key  text        PRIMARY KEY,
    private_key text        NOT NULL,
    company_id  bigint      NOT NULL,
    disabled    bool        NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS enum_labels (
    kind  text NOT NULL,                              -- 'order_type' | 'charge_type' | 'pricing_unit'
    value int  NOT NULL,
    name  text NOT NULL,
    PRIMARY KEY (kind, value)
);
