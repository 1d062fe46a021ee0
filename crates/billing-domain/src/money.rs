//! Money as Stripe counts it: an integer amount in the currency's minor unit plus a
//! lower-case ISO 4217 code. Never floating point.

use std::fmt;

use thiserror::Error;

/// A three-letter ISO 4217 currency code, stored lower-case (`usd`, `eur`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

/// Why a currency or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    /// Not three ASCII letters.
    #[error("currency must be a three-letter ISO 4217 code such as \"usd\"")]
    InvalidCurrency,
    /// A negative amount where only zero or more makes sense.
    #[error("amount must not be negative")]
    NegativeAmount,
    /// Two amounts in different currencies were combined.
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The arithmetic would overflow.
    #[error("amount out of range")]
    Overflow,
}

impl Currency {
    /// Parses a code, accepting any letter case and storing it lower-case as Stripe does.
    ///
    /// # Errors
    /// [`MoneyError::InvalidCurrency`] unless `code` is exactly three ASCII letters.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(MoneyError::InvalidCurrency);
        }
        Ok(Self([
            bytes[0].to_ascii_lowercase(),
            bytes[1].to_ascii_lowercase(),
            bytes[2].to_ascii_lowercase(),
        ]))
    }

    /// The lower-case code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("xxx")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-negative amount of money in minor units (cents for `usd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount of zero or more.
    ///
    /// # Errors
    /// [`MoneyError::NegativeAmount`] when `minor < 0`.
    pub fn new(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor < 0 {
            return Err(MoneyError::NegativeAmount);
        }
        Ok(Self { minor, currency })
    }

    /// Zero in `currency`.
    #[must_use]
    pub const fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// The amount in minor units.
    #[must_use]
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    #[must_use]
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// `self - other`, floored at zero: what is still owed after `other` was paid.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when the currencies differ.
    pub fn saturating_sub(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(Money {
            minor: (self.minor - other.minor).max(0),
            currency: self.currency,
        })
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] or [`MoneyError::Overflow`].
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }

    /// True when the amount is zero.
    #[must_use]
    pub const fn is_zero(&self) -> bool {
        self.minor == 0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.minor, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_is_normalised_to_lower_case() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "eur");
    }

    #[test]
    fn currency_rejects_anything_but_three_letters() {
        for bad in ["", "us", "usdd", "u1d", "€ur", "us "] {
            assert_eq!(
                Currency::parse(bad),
                Err(MoneyError::InvalidCurrency),
                "{bad}"
            );
        }
    }

    #[test]
    fn negative_amounts_are_refused() {
        let usd = Currency::parse("usd").unwrap();

        assert_eq!(Money::new(-1, usd), Err(MoneyError::NegativeAmount));
    }

    #[test]
    fn what_is_left_to_pay_never_goes_below_zero() {
        let usd = Currency::parse("usd").unwrap();
        let due = Money::new(1000, usd).unwrap();

        assert_eq!(
            due.saturating_sub(Money::new(400, usd).unwrap())
                .unwrap()
                .minor(),
            600
        );
        assert_eq!(
            due.saturating_sub(Money::new(1500, usd).unwrap())
                .unwrap()
                .minor(),
            0
        );
    }

    #[test]
    fn amounts_in_different_currencies_do_not_mix() {
        let usd = Money::new(1, Currency::parse("usd").unwrap()).unwrap();
        let eur = Money::new(1, Currency::parse("eur").unwrap()).unwrap();

        assert!(matches!(
            usd.checked_add(eur),
            Err(MoneyError::CurrencyMismatch(..))
        ));
    }
}
