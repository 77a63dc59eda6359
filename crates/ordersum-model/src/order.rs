//! Orders as the billing system writes them into `orders`.

/// `orders.status`, the billing system's codes (a `smallint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum OrderStatus {
    Unpaid = 1,
    Paid = 2,
    Revoked = 3,
}

impl OrderStatus {
    /// Every status, in code order.
    pub const ALL: [OrderStatus; 3] =
        [OrderStatus::Unpaid, OrderStatus::Paid, OrderStatus::Revoked];

    /// The statuses a summary exports (revoked orders are in no sheet).
    pub const EXPORTED: [OrderStatus; 2] = [OrderStatus::Unpaid, OrderStatus::Paid];

    /// The code stored in `orders.status`.
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// The status of a code; `None` for a code the billing system does not
    /// define.
    pub const fn from_code(code: i16) -> Option<OrderStatus> {
        match code {
            1 => Some(OrderStatus::Unpaid),
            2 => Some(OrderStatus::Paid),
            3 => Some(OrderStatus::Revoked),
            _ => None,
        }
    }

    /// The name shown to customers (the workbook's Status column).
    pub const fn name(self) -> &'static str {
        match self {
            OrderStatus::Unpaid => "Unpaid",
            OrderStatus::Paid => "Paid",
            OrderStatus::Revoked => "Revoked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_the_billing_systems() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(OrderStatus::Unpaid.code(), 1);
        assert_eq!(OrderStatus::Paid.code(), 2);
        assert_eq!(OrderStatus::Revoked.code(), 3);
        assert_eq!(OrderStatus::from_code(0), None);
        assert_eq!(OrderStatus::from_code(4), None);
    }
}
